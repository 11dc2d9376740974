"""Purchase facts: what partners publish to rewards, and what rewards publishes about them."""

from __future__ import annotations

import uuid
from datetime import datetime

from crm_shared.events import Event
from rewards.purchases.models import PurchaseReport, RefundReport


class PurchaseReported(PurchaseReport, Event):
    """A partner's ``partner.purchase.reported.v1`` (the tenant is the envelope's)."""

    type = "partner.purchase.reported.v1"


class RefundReported(RefundReport, Event):
    """A partner's ``partner.refund.reported.v1``."""

    type = "partner.refund.reported.v1"


class PurchaseRecorded(Event):
    """A purchase was recorded (once per order)."""

    type = "rewards.purchase.recorded.v1"

    purchase_id: uuid.UUID
    customer_id: uuid.UUID
    order_id: str
    amount_cents: int
    currency: str
    kind: str
    occurred_at: datetime


class PurchaseRefunded(Event):
    """(Part of) a purchase was refunded; ``amount_cents`` is this refund's."""

    type = "rewards.purchase.refunded.v1"

    purchase_id: uuid.UUID
    refund_id: uuid.UUID
    customer_id: uuid.UUID
    amount_cents: int
    purchase_amount_cents: int
