"""Tenant administration from the command line (until the admin API of issue 3).

``python -m identity.tenants.cli ensure --slug demo --name "Demo Brand"`` prints the tenant's
id, creating the tenant when it does not exist; the exit code is 0, and the second line of
output says ``created`` or ``existing``.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from sqlmodel import select

from crm_shared.db import Database
from identity.settings import IdentitySettings
from identity.tenants.models import Tenant, TenantCreate
from identity.tenants.service import create_tenant


async def ensure_tenant(
    *, slug: str, name: str, tenant_id: uuid.UUID | None
) -> tuple[Tenant, bool]:
    """The tenant with ``slug``, created when missing; True when it was created now."""
    db = Database(IdentitySettings())
    try:
        async with db.session() as session, session.begin():
            found = (await session.exec(select(Tenant).where(Tenant.slug == slug))).first()
            if found is not None:
                return found, False
            tenant = await create_tenant(
                session=session, data=TenantCreate(slug=slug, name=name), tenant_id=tenant_id
            )
            return tenant, True
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Manage tenants.")
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="create the tenant unless it exists; print its id")
    ensure.add_argument("--slug", required=True)
    ensure.add_argument("--name", required=True)
    ensure.add_argument("--id", type=uuid.UUID, default=None)
    args = parser.parse_args()
    tenant, created = asyncio.run(ensure_tenant(slug=args.slug, name=args.name, tenant_id=args.id))
    print(tenant.id)
    print("created" if created else "existing")


if __name__ == "__main__":
    main()
