"""How accounts react to other services' events."""

import uuid
from datetime import datetime
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from rewards.accounts import service


class CustomerRegistered(Event):
    """Rewards' reading of identity's ``identity.customer.registered.v1``."""

    type = "identity.customer.registered.v1"

    customer_id: uuid.UUID
    registered_at: datetime


class PayTrigger(Protocol):
    """What pays the sign-up trigger (rules' ``pay_trigger`` with its trigger bound, wired in
    ``rewards/handlers.py``: accounts does not import rules, which build on accounts)."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        envelope: Envelope,
        customer_id: uuid.UUID,
        occurred_at: datetime,
        welcome_points: int,
        ttl_days: int,
    ) -> None: ...


async def welcome_registered_customer(
    event: CustomerRegistered,
    *,
    envelope: Envelope,
    session: AsyncSession,
    pay_signup: PayTrigger,
    welcome_points: int,
    ttl_days: int = service.DEFAULT_TTL_DAYS,
) -> None:
    """Open the new customer's account and pay the sign-up rules (the tenant's default
    welcome rule gives ``welcome_points``), in one transaction: the account appears with them."""
    await pay_signup(
        session,
        envelope=envelope,
        customer_id=event.customer_id,
        occurred_at=event.registered_at,
        welcome_points=welcome_points,
        ttl_days=ttl_days,
    )
