"""Identity recomputes a customer's duplicate suggestions from its own events: after the
request that changed the customer, retried like any handler, never slowing the request."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import Handler
from identity.duplicates import service


class CustomerChanged(Event):
    """The customer of identity's registered/updated/linked events (the field they share)."""

    customer_id: uuid.UUID


class CustomerRegistered(CustomerChanged):
    type = "identity.customer.registered.v1"


class CustomerUpdated(CustomerChanged):
    type = "identity.customer.updated.v1"


class SocialProfileLinked(CustomerChanged):
    type = "identity.social_profile.linked.v1"


async def suggest_duplicates(
    event: CustomerChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Recompute the customer's suggestions."""
    await service.suggest_for(
        session=session, tenant_id=envelope.tenantid, customer_id=event.customer_id
    )


DUPLICATE_HANDLERS: list[Handler[Any]] = [
    Handler(CustomerRegistered, suggest_duplicates),
    Handler(CustomerUpdated, suggest_duplicates),
    Handler(SocialProfileLinked, suggest_duplicates),
]
