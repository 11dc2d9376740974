"""Events rewards publishes about accounts and points."""

import uuid

from crm_shared.events import Event


class PointsCredited(Event):
    """Points were added to a customer's account."""

    type = "rewards.points.credited.v1"

    customer_id: uuid.UUID
    entry_id: uuid.UUID
    points: int
    reason: str
    balance: int
