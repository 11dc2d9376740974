"""Tenant administration from the command line: the bootstrap before anyone can log in.

``python -m identity.tenants.cli ensure --slug demo --name "Demo Brand"`` prints the tenant's
id, creating the tenant when it does not exist; the second line of output says ``created`` or
``existing``. With ``--admin-email`` and ``--admin-password`` it also ensures an admin staff
user, who can then log in at ``POST /oauth/token`` (grant_type=password) and manage the rest
through the graph.

``python -m identity.tenants.cli client --tenant demo --name shop --kind partner --scopes
"purchases:write customers:read"`` registers an API client and prints its id and secret.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from sqlmodel import select

from crm_shared.db import Database
from identity.access import service as access
from identity.access.models import ApiClientCreate, StaffUser, StaffUserCreate
from identity.settings import IdentitySettings
from identity.tenants.models import Tenant, TenantCreate
from identity.tenants.service import create_tenant


async def ensure_tenant(
    *,
    slug: str,
    name: str,
    tenant_id: uuid.UUID | None,
    admin_email: str | None = None,
    admin_password: str | None = None,
) -> tuple[Tenant, bool]:
    """The tenant with ``slug``, created when missing; True when it was created now."""
    db = Database(IdentitySettings())
    try:
        async with db.session() as session, session.begin():
            tenant = (await session.exec(select(Tenant).where(Tenant.slug == slug))).first()
            created = tenant is None
            if tenant is None:
                tenant = await create_tenant(
                    session=session, data=TenantCreate(slug=slug, name=name), tenant_id=tenant_id
                )
            if admin_email and admin_password:
                data = StaffUserCreate(email=admin_email, password=admin_password, role="admin")
                existing = await session.exec(
                    select(StaffUser).where(
                        StaffUser.tenant_id == tenant.id, StaffUser.email == data.email
                    )
                )
                if existing.first() is None:
                    await access.create_staff_user(session=session, tenant_id=tenant.id, data=data)
            return tenant, created
    finally:
        await db.dispose()


async def register_client(
    *, tenant: str, name: str, kind: str, scopes: list[str]
) -> tuple[uuid.UUID, str]:
    """Register an API client of ``tenant`` (slug); its id and secret."""
    db = Database(IdentitySettings())
    try:
        async with db.session() as session, session.begin():
            found = (await session.exec(select(Tenant).where(Tenant.slug == tenant))).first()
            if found is None:
                raise SystemExit(f"no tenant {tenant!r}")
            client, secret = await access.create_api_client(
                session=session,
                tenant_id=found.id,
                data=ApiClientCreate(name=name, kind=kind, scopes=scopes),
            )
            return client.id, secret
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Manage tenants.")
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="create the tenant unless it exists; print its id")
    ensure.add_argument("--slug", required=True)
    ensure.add_argument("--name", required=True)
    ensure.add_argument("--id", type=uuid.UUID, default=None)
    ensure.add_argument("--admin-email")
    ensure.add_argument("--admin-password")
    client = sub.add_parser("client", help="register an API client; print its id and secret")
    client.add_argument("--tenant", required=True, help="the tenant's slug")
    client.add_argument("--name", required=True)
    client.add_argument("--kind", choices=["frontend", "partner"], required=True)
    client.add_argument("--scopes", required=True, help="space-separated scopes")
    args = parser.parse_args()
    if args.command == "client":
        client_id, secret = asyncio.run(
            register_client(
                tenant=args.tenant, name=args.name, kind=args.kind, scopes=args.scopes.split()
            )
        )
        print(client_id)
        print(secret)
        return
    tenant, created = asyncio.run(
        ensure_tenant(
            slug=args.slug,
            name=args.name,
            tenant_id=args.id,
            admin_email=args.admin_email,
            admin_password=args.admin_password,
        )
    )
    print(tenant.id)
    print("created" if created else "existing")


if __name__ == "__main__":
    main()
