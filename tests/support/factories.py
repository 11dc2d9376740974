"""Small factories for test data, through the services' own operations."""

from __future__ import annotations

import uuid

from crm_shared.db import Database
from identity.customers.models import Customer, CustomerCreate
from identity.customers.service import register_customer
from identity.tenants.models import TenantCreate
from identity.tenants.service import create_tenant


async def make_tenant(db: Database) -> uuid.UUID:
    """A new tenant with a unique slug."""
    slug = f"t-{uuid.uuid4().hex[:12]}"
    async with db.session() as session, session.begin():
        tenant = await create_tenant(session=session, data=TenantCreate(slug=slug, name=slug))
    return tenant.id


async def make_customer(db: Database, tenant_id: uuid.UUID, name: str = "Ann") -> Customer:
    """A customer registered in ``tenant_id`` (its event waits in identity's outbox)."""
    async with db.session() as session, session.begin():
        return await register_customer(
            session=session,
            tenant_id=tenant_id,
            data=CustomerCreate(name=name, email=f"{uuid.uuid4().hex[:10]}@example.com"),
        )
