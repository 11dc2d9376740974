"""Events rewards publishes about offers and coupons (through the outbox, in the change's
transaction). Coupon events never carry the code: it is a bearer credential."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class OfferPublished(Event):
    """An offer went live: customers in its audience can see and claim it from ``starts_at``."""

    type = "rewards.offer.published.v1"

    offer_id: uuid.UUID
    name: str
    kind: str
    starts_at: datetime | None
    ends_at: datetime | None
    flash: bool
    stock: int | None
    segments: list[str]
    tiers: list[str]
    influencers: bool
    advocates: bool


class OfferEnded(Event):
    """An offer was ended: nothing more is issued, and unredeemed coupons expire."""

    type = "rewards.offer.ended.v1"

    offer_id: uuid.UUID
    issued: int


class CouponIssued(Event):
    """A coupon was issued (to a customer, or as an anonymous code when ``customer_id`` is
    null)."""

    type = "rewards.coupon.issued.v1"

    coupon_id: uuid.UUID
    offer_id: uuid.UUID
    customer_id: uuid.UUID | None
    source: str
    grant_id: uuid.UUID | None
    expires_at: datetime | None


class CouponRedeemed(Event):
    """A coupon was redeemed at checkout, once."""

    type = "rewards.coupon.redeemed.v1"

    coupon_id: uuid.UUID
    offer_id: uuid.UUID
    customer_id: uuid.UUID | None
    order_id: str
    redeemed_at: datetime


class CouponGrantFailed(Event):
    """A granted coupon could not be issued (``reason`` says why); it is not retried."""

    type = "rewards.coupon.grant_failed.v1"

    grant_id: uuid.UUID
    customer_id: uuid.UUID
    offer_id: uuid.UUID
    reason: str


class CouponGranted(Event):
    """A customer is owed a coupon of ``offer_id``: rules and referral milestones publish it,
    offers issues the coupon (once per ``grant_id``)."""

    type = "rewards.coupon.granted.v1"

    grant_id: uuid.UUID
    customer_id: uuid.UUID
    offer_id: uuid.UUID
    # What granted it: ``rule:<id>:v<version>``, ``referral-milestone:<id>``, ``referral:<id>``.
    source: str
    source_event_id: uuid.UUID
