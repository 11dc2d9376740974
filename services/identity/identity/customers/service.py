"""Operations on customers."""

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.errors import Conflict, Unauthenticated
from crm_shared.events import record_event
from identity.customers.events import CustomerRegistered
from identity.customers.models import Customer, CustomerCreate
from identity.tenants.models import Tenant


async def register_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, data: CustomerCreate
) -> Customer:
    """Store a new customer and announce ``identity.customer.registered.v1``."""
    if await session.get(Tenant, tenant_id) is None:
        raise Unauthenticated("unknown tenant")
    if data.email is not None:
        taken = await session.exec(
            select(Customer.id).where(
                Customer.tenant_id == tenant_id, func.lower(Customer.email) == data.email
            )
        )
        if taken.first() is not None:
            raise Conflict("email: a customer with this e-mail exists", field="input.email")
    customer = Customer(tenant_id=tenant_id, name=data.name, email=data.email)
    session.add(customer)
    await record_event(
        session,
        CustomerRegistered(customer_id=customer.id, registered_at=customer.created_at),
        tenant_id=tenant_id,
        subject=str(customer.id),
    )
    await session.flush()
    return customer


async def get_customers(
    *, session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Customer]:
    """The tenant's customers among ``ids``, by id (others' ids are simply absent)."""
    rows = await session.exec(
        select(Customer).where(Customer.tenant_id == tenant_id, col(Customer.id).in_(ids))
    )
    return {c.id: c for c in rows}


async def list_customers(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[object, uuid.UUID] | None = None,
) -> list[Customer]:
    """A page of the tenant's customers, oldest first, after a ``(created_at, id)`` position."""
    query = select(Customer).where(Customer.tenant_id == tenant_id)
    if after is not None:
        created_at, id_ = after
        query = query.where(
            or_(
                col(Customer.created_at) > created_at,
                and_(col(Customer.created_at) == created_at, col(Customer.id) > id_),
            )
        )
    query = query.order_by(col(Customer.created_at), col(Customer.id)).limit(limit)
    return list(await session.exec(query))
