"""Events rewards publishes about points (through the outbox, in the entry's transaction)."""

import uuid

from crm_shared.events import Event


class PointsMoved(Event):
    """A journal entry changed a customer's balance by ``points`` (always positive here)."""

    customer_id: uuid.UUID
    entry_id: uuid.UUID
    # The entry's kind: earn, spend, expire, reversal, adjustment.
    kind: str
    points: int
    balance_after: int
    reason: str


class PointsCredited(PointsMoved):
    """Points were added to a customer's account (earned, adjusted in, a spend reversed)."""

    type = "rewards.points.credited.v1"


class PointsDebited(PointsMoved):
    """Points were taken from a customer's account (spent, adjusted out, an earn reversed)."""

    type = "rewards.points.debited.v1"


class PointsExpired(PointsMoved):
    """A lot's remaining points expired unspent."""

    type = "rewards.points.expired.v1"
