"""How accounts react to other services' events."""

import uuid
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from rewards.accounts import service


class CustomerRegistered(Event):
    """Rewards' reading of identity's ``identity.customer.registered.v1``."""

    type = "identity.customer.registered.v1"

    customer_id: uuid.UUID
    registered_at: datetime


async def welcome_registered_customer(
    event: CustomerRegistered,
    *,
    envelope: Envelope,
    session: AsyncSession,
    welcome_points: int,
    ttl_days: int = service.DEFAULT_TTL_DAYS,
) -> None:
    """Open the new customer's account and credit the welcome points, keyed by the event."""
    await service.open_account(
        session=session, tenant_id=envelope.tenantid, customer_id=event.customer_id
    )
    if welcome_points <= 0:
        return
    await service.earn(
        session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        points=welcome_points,
        reason="welcome",
        idempotency_key=f"event:{envelope.id}",
        actor="system:welcome",
        ttl_days=ttl_days,
    )
