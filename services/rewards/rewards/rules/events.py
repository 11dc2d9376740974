"""Events rules publish (through the outbox, in the payout's transaction)."""

import uuid

from crm_shared.events import Event


class CouponGranted(Event):
    """A rule granted a customer a coupon of an offer; offers issues it (once per grant)."""

    type = "rewards.coupon.granted.v1"

    grant_id: uuid.UUID
    customer_id: uuid.UUID
    offer_id: uuid.UUID
    # ``rule:<rule id>:v<version>``: what granted it.
    source: str
    source_event_id: uuid.UUID
