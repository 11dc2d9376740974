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
    """Open the new customer's account and pay the sign-up rules (the tenant's default
    welcome rule gives ``welcome_points``), in one transaction: the account appears with them."""
    # Imported here: rules build on accounts, and accounts only hand them the event.
    from rewards.rules.conditions import Trigger
    from rewards.rules.handlers import pay_trigger

    await pay_trigger(
        session,
        envelope=envelope,
        trigger=Trigger.CUSTOMER_REGISTERED,
        customer_id=event.customer_id,
        occurred_at=event.registered_at,
        welcome_points=welcome_points,
        ttl_days=ttl_days,
    )
