"""`make run` and `make test` work with Debian's default PostgreSQL authentication: on a
private cluster with Debian's pg_hba.conf (peer on the socket, scram-sha-256 on TCP),
``ensure-services.sh postgres-login`` makes the project's password-less URLs log in."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from crm_shared import devstack
from crm_shared.provision import provision_database
from tests.support.private_postgres import PG_BIN, PrivatePostgres

SCRIPT = devstack.REPO / "infra" / "local" / "ensure-services.sh"
# Debian's default pg_hba.conf (postgresql-common), less comments.
DEBIAN_PG_HBA = """\
local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or shutil.which("psql") is None,
    reason="needs root, PostgreSQL's initdb and psql (a private cluster as the postgres user)",
)


def _login(cluster: PrivatePostgres, passfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "postgres-login"],
        env={
            **os.environ,
            "CRM_PG_PORT": str(cluster.port),
            "PGHOST": str(cluster.base),  # the socket directory, for peer auth
            "PGPASSFILE": str(passfile),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_debian_default_authentication_is_set_up_for_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text("db.example:5432:*:someone:kept\n")
    cluster = PrivatePostgres()
    try:
        (cluster.data / "pg_hba.conf").write_text(DEBIAN_PG_HBA)
        cluster.start()
        monkeypatch.setenv("PGPASSFILE", str(passfile))
        with pytest.raises(asyncpg.InvalidPasswordError):  # as a fresh Debian machine
            await asyncpg.connect(cluster.admin_dsn)

        first = _login(cluster, passfile)
        assert first.returncode == 0, first.stderr
        assert "setting them" in first.stderr
        lines = passfile.read_text().splitlines()
        assert lines[0] == "db.example:5432:*:someone:kept"
        assert oct(passfile.stat().st_mode & 0o777) == "0o600"

        # The project's own URLs (no password in them) log in now: the admin DSN, and the
        # service roles provisioning makes.
        stack = devstack.Stack(database="crm_auth_check", pg_host=cluster.host)
        await provision_database(cluster.admin_dsn, stack.database, passwords={})
        for service in devstack.SUBGRAPHS:
            conn = await asyncpg.connect(stack.database_url(service))
            assert await conn.fetchval("SELECT current_user") == f"{service}_svc"
            await conn.close()

        # Once it works, a second run changes nothing.
        again = _login(cluster, passfile)
        assert again.returncode == 0, again.stderr
        assert again.stderr == ""
        assert passfile.read_text().splitlines() == lines
    finally:
        cluster.close()


def test_without_root_it_says_exactly_what_to_change(tmp_path: Path) -> None:
    cluster = PrivatePostgres()
    try:
        (cluster.data / "pg_hba.conf").write_text(DEBIAN_PG_HBA)
        cluster.start()
        shutil.chown(tmp_path, "postgres")
        # As the postgres OS user: not root, so it may only explain.
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", "bash", str(SCRIPT), "postgres-login"],
            env={
                **os.environ,
                "CRM_PG_PORT": str(cluster.port),
                "PGPASSFILE": str(tmp_path / "pgpass"),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "ALTER ROLE postgres PASSWORD" in result.stderr
        assert "127.0.0.1/32 trust" in result.stderr
        assert not (tmp_path / "pgpass").exists()
    finally:
        cluster.close()
