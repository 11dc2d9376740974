"""Operations on tenants."""

import uuid

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.errors import Conflict
from crm_shared.events import record_event
from identity.tenants.events import TenantCreated
from identity.tenants.models import Tenant, TenantCreate


async def create_tenant(
    *, session: AsyncSession, data: TenantCreate, tenant_id: uuid.UUID | None = None
) -> Tenant:
    """Create a tenant (slug unique) and announce it."""
    if (await session.exec(select(Tenant).where(Tenant.slug == data.slug))).first() is not None:
        raise Conflict(f"slug: a tenant {data.slug!r} exists", field="slug")
    tenant = Tenant(id=tenant_id or uuid.uuid4(), name=data.name, slug=data.slug)
    session.add(tenant)
    await record_event(
        session,
        TenantCreated(tenant_id=tenant.id, slug=tenant.slug, name=tenant.name),
        tenant_id=tenant.id,
        subject=str(tenant.id),
    )
    await session.flush()
    return tenant


async def get_tenant(*, session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant with this id, if any."""
    return await session.get(Tenant, tenant_id)
