"""Building blocks of the offer, coupon and catalogue tests: consents, audience, offers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from crm_shared.db import Database, utcnow
from crm_shared.events import Envelope
from crm_shared.privacy import ConsentChanged, project_consent
from rewards.offers import service
from rewards.offers.models import Offer, OfferCreate, OfferKind

ACTOR = "staff:test"


def envelope(event_type: str, tenant_id: uuid.UUID, data: dict[str, Any], **kw: Any) -> Envelope:
    """An envelope as the consumer would hand it to a handler."""
    return Envelope(source="test", type=event_type, tenantid=tenant_id, data=data, **kw)


async def set_marketing(
    db: Database, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], granted: bool = True
) -> None:
    """Project identity's consent change for each customer, as rewards' handler does."""
    async with db.session() as session, session.begin():
        for customer_id in customer_ids:
            event = ConsentChanged(
                customer_id=customer_id, purpose="marketing", granted=granted, changed_at=utcnow()
            )
            await project_consent(
                event,
                envelope=envelope(event.type, tenant_id, event.model_dump(mode="json")),
                session=session,
                schema="rewards",
            )


async def place_in_audience(
    db: Database,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    segment: str | None = None,
    tier: str | None = None,
    at: datetime | None = None,
) -> None:
    """Record a customer's segment or tier in the audience projection."""
    async with db.session() as session, session.begin():
        if segment is not None:
            await service.project_audience(
                session=session,
                tenant_id=tenant_id,
                customer_id=customer_id,
                values={"segment": segment},
                stamp="segment_at",
                at=at or utcnow(),
            )
        if tier is not None:
            await service.project_audience(
                session=session,
                tenant_id=tenant_id,
                customer_id=customer_id,
                values={"tier": tier, "tier_id": None},
                stamp="tier_at",
                at=at or utcnow(),
            )


async def published_offer(
    db: Database, tenant_id: uuid.UUID, *, publish: bool = True, **fields: Any
) -> Offer:
    """A published (or draft) 10 % offer; ``fields`` override OfferCreate's."""
    data = OfferCreate.model_validate(
        {"name": "Winter 10", "kind": OfferKind.PERCENTAGE, "percent_off": 10, **fields}
    )
    async with db.session() as session, session.begin():
        offer = await service.create_offer(
            session=session, tenant_id=tenant_id, data=data, actor=ACTOR
        )
        if publish:
            offer = await service.publish_offer(
                session=session, tenant_id=tenant_id, offer_id=offer.id
            )
    return offer


async def claim(
    db: Database, tenant_id: uuid.UUID, offer_id: uuid.UUID, customer_id: uuid.UUID
) -> Any:
    """The customer claims a coupon of the offer in a transaction of its own."""
    async with db.session() as session, session.begin():
        return await service.claim_offer(
            session=session, tenant_id=tenant_id, offer_id=offer_id, customer_id=customer_id
        )
