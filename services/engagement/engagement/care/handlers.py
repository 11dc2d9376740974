"""Rewards' customer value, projected for case priority."""

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from engagement.care import service


class CustomerValueChanged(Event):
    """Rewards' figure of a customer's value changed (the fields care needs)."""

    type = "rewards.customer_value.changed.v1"

    customer_id: uuid.UUID
    value_cents: int


async def remember_customer_value(
    event: CustomerValueChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Keep the customer's latest value (by the event's time) for prioritising their cases."""
    await service.project_customer_value(
        session=session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        value_cents=event.value_cents,
        changed_at=envelope.time,
    )
