"""Identity's readings of the events that carry a customer's value, balance, segment, tier and
interactions (only the fields the projection needs; extra fields are ignored)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import BatchHandler, Handler
from identity.activity import service


class CustomerValueChanged(Event):
    type = "rewards.customer_value.changed.v1"

    customer_id: uuid.UUID
    value_cents: int


class PointsMoved(Event):
    customer_id: uuid.UUID
    balance_after: int


class PointsCredited(PointsMoved):
    type = "rewards.points.credited.v1"


class PointsDebited(PointsMoved):
    type = "rewards.points.debited.v1"


class PointsExpired(PointsMoved):
    type = "rewards.points.expired.v1"


class TierChanged(Event):
    type = "rewards.tier.changed.v1"

    customer_id: uuid.UUID
    tier: str | None


class SegmentChanged(Event):
    type = "engagement.segment.changed.v1"

    customer_id: uuid.UUID
    segment: str


class InteractionRecorded(Event):
    type = "engagement.interaction.recorded.v1"

    customer_id: uuid.UUID | None = None
    occurred_at: datetime


async def project_value(
    event: CustomerValueChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Keep the customer's value (own and referred purchases) to sort lists by."""
    await _figure(session, envelope, event.customer_id, "value_cents", event.value_cents)


async def project_balances(
    events: Sequence[PointsMoved], *, envelopes: Sequence[Envelope], session: AsyncSession
) -> None:
    """Keep each customer's points balance after its newest entry of the batch (every credited
    interaction moves one: one statement a batch, not one an event)."""
    await service.project_figures(
        session=session,
        figure="balance",
        seen=[
            (envelope.tenantid, event.customer_id, event.balance_after, envelope.time)
            for event, envelope in zip(events, envelopes, strict=True)
        ],
    )


async def project_tier(event: TierChanged, *, envelope: Envelope, session: AsyncSession) -> None:
    """Keep the customer's tier (by name; None: no tier)."""
    await _figure(session, envelope, event.customer_id, "tier", event.tier)


async def project_segment(
    event: SegmentChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Keep the customer's participation segment."""
    await _figure(session, envelope, event.customer_id, "segment", event.segment)


async def project_interactions(
    events: Sequence[InteractionRecorded],
    *,
    envelopes: Sequence[Envelope],
    session: AsyncSession,
) -> None:
    """Move the last interaction of each customer the batch's interactions are linked to."""
    await service.project_interactions(
        session=session,
        seen=[
            (envelope.tenantid, event.customer_id, event.occurred_at)
            for event, envelope in zip(events, envelopes, strict=True)
            if event.customer_id is not None
        ],
    )


async def _figure(
    session: AsyncSession, envelope: Envelope, customer_id: uuid.UUID, figure: str, value: Any
) -> None:
    await service.project_figure(
        session=session,
        tenant_id=envelope.tenantid,
        customer_id=customer_id,
        figure=figure,
        value=value,
        at=envelope.time,
    )


ACTIVITY_HANDLERS: list[Handler[Any]] = [
    Handler(CustomerValueChanged, project_value),
    BatchHandler(PointsCredited, project_balances),
    BatchHandler(PointsDebited, project_balances),
    BatchHandler(PointsExpired, project_balances),
    Handler(TierChanged, project_tier),
    Handler(SegmentChanged, project_segment),
    BatchHandler(InteractionRecorded, project_interactions),
]
