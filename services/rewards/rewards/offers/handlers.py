"""How offers react to other services' (and other rewards features') events: the audience
projection offers are aimed with, and coupons granted by rules and referral milestones."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import Handler
from crm_shared.privacy import ErasureRequested
from rewards.offers import service
from rewards.offers.events import CouponGranted
from rewards.tiers.events import TierChanged


class SegmentChanged(Event):
    """Rewards' reading of engagement's ``engagement.segment.changed.v1``."""

    type = "engagement.segment.changed.v1"

    customer_id: uuid.UUID
    segment: str | None = None


class InfluencerIdentified(Event):
    """Rewards' reading of engagement's ``engagement.influencer.identified.v1``."""

    type = "engagement.influencer.identified.v1"

    customer_id: uuid.UUID
    advocate: bool = False


async def project_segment(
    event: SegmentChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Remember the customer's segment (a late, older event changes nothing)."""
    await service.project_audience(
        session=session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        values={"segment": event.segment},
        stamp="segment_at",
        at=envelope.time,
    )


async def project_influence(
    event: InfluencerIdentified, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Remember that the customer is an influencer, and whether an advocate."""
    await service.project_audience(
        session=session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        values={"influencer": True, "advocate": event.advocate},
        stamp="influence_at",
        at=envelope.time,
    )


async def project_tier(event: TierChanged, *, envelope: Envelope, session: AsyncSession) -> None:
    """Remember the customer's tier (its name and id; offers may name either)."""
    await service.project_audience(
        session=session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        values={"tier": event.tier, "tier_id": str(event.tier_id) if event.tier_id else None},
        stamp="tier_at",
        at=envelope.time,
    )


async def issue_granted_coupon(
    event: CouponGranted, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Issue the granted coupon once per grant id; a refusal is recorded, not retried."""
    await service.grant_coupon(
        session=session,
        tenant_id=envelope.tenantid,
        grant=service.Grant(
            grant_id=event.grant_id,
            customer_id=event.customer_id,
            offer_id=event.offer_id,
            source=event.source[:200],
            source_event_id=str(event.source_event_id),
        ),
    )


async def forget_erased_audience(
    event: ErasureRequested, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Segment, tier and influence are profiling facts: an erased customer's go."""
    await service.forget_audience(
        session=session,
        tenant_id=envelope.tenantid,
        customer_ids=event.customer_ids or [event.customer_id],
    )


OFFER_HANDLERS: list[Handler[Any]] = [
    Handler(SegmentChanged, project_segment),
    Handler(InfluencerIdentified, project_influence),
    Handler(TierChanged, project_tier),
    Handler(CouponGranted, issue_granted_coupon),
    Handler(ErasureRequested, forget_erased_audience),
]
