"""Customer value changes (for case priority and partners' warehouses)."""

from __future__ import annotations

import uuid

from crm_shared.events import Event


class CustomerValueChanged(Event):
    """A customer's value changed: own purchases net of refunds plus referred customers'."""

    type = "rewards.customer_value.changed.v1"

    customer_id: uuid.UUID
    value_cents: int
    own_revenue_cents: int
    referral_revenue_cents: int
    currency: str | None
