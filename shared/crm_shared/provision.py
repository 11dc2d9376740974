"""Provision what the services need before they migrate: a database, a schema and a role per
service (with no rights on the others' schemas), and a broker vhost.

Run as the PostgreSQL superuser (local trust auth) by ``make run`` and the test suite:
``python -m crm_shared.provision --database crm --vhost crm``. It is idempotent. In
production the same statements belong to the platform's database provisioning.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from urllib.parse import quote

import aio_pika
import asyncpg

SERVICES = ("identity", "engagement", "rewards")
# Extensions a service's migrations use, created in its schema by the admin: a service role
# may not create extensions (it has no CREATE on the database).
EXTENSIONS = {"identity": ("unaccent", "pg_trgm")}


def role_of(service: str) -> str:
    """The database role a service connects as."""
    return f"{service}_svc"


async def provision_database(admin_dsn: str, database: str, *, passwords: dict[str, str]) -> None:
    """Create ``database``, and in it one schema owned by each service's own role."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await admin.execute(f'CREATE DATABASE "{database}"')
        for service in SERVICES:
            role = role_of(service)
            password = passwords.get(service, service)
            if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                literal = password.replace("'", "''")
                await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{literal}'")
            await admin.execute(f"ALTER ROLE {role} SET search_path = {service}")
    finally:
        await admin.close()

    db = await asyncpg.connect(admin_dsn.rsplit("/", 1)[0] + f"/{database}")
    try:
        # Nobody but a schema's owner may use it; nobody may create in public.
        await db.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
        await db.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service in SERVICES:
            role = role_of(service)
            await db.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {role}')
            await db.execute(f"CREATE SCHEMA IF NOT EXISTS {service} AUTHORIZATION {role}")
            await db.execute(f"REVOKE ALL ON SCHEMA {service} FROM PUBLIC")
            for extension in EXTENSIONS.get(service, ()):
                await db.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA {service}")
    finally:
        await db.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    """Drop ``database`` (test runs start from nothing)."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def _vhost_reachable(amqp_base: str, vhost: str) -> bool:
    try:
        connection = await aio_pika.connect(f"{amqp_base}/{quote(vhost, safe='')}", timeout=5)
    except Exception:
        return False
    await connection.close()
    return True


async def provision_vhost(amqp_base: str, vhost: str, user: str = "guest") -> None:
    """Make sure the broker has ``vhost`` and ``user`` may use it (via ``rabbitmqctl``)."""
    if await _vhost_reachable(amqp_base, vhost):
        return
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise SystemExit(
            f"RabbitMQ vhost {vhost!r} is missing and rabbitmqctl is not on PATH: create it "
            f"(rabbitmqctl add_vhost {vhost}; rabbitmqctl set_permissions -p {vhost} "
            f"{user} '.*' '.*' '.*') or set RABBITMQ_DEFAULT_VHOST."
        )
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=False, capture_output=True)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [ctl, "-q", "set_topic_permissions", "-p", vhost, user, "", ".*", ".*"],
        check=False,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="crm")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672")
    parser.add_argument("--vhost", default="crm")
    parser.add_argument("--fresh", action="store_true", help="drop the database first")
    args = parser.parse_args(argv)

    async def run() -> None:
        if args.fresh:
            await drop_database(args.admin_dsn, args.database)
        # Role passwords (ignored under local trust auth): <SERVICE>_DB_PASSWORD, else the name.
        passwords = {s: os.environ.get(f"{s.upper()}_DB_PASSWORD", s) for s in SERVICES}
        await provision_database(args.admin_dsn, args.database, passwords=passwords)
        await provision_vhost(args.amqp, args.vhost)

    asyncio.run(run())
    print(f"provisioned database {args.database!r} and vhost {args.vhost!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
