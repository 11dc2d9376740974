"""Events tiers publish (through the outbox, in the recomputation's transaction)."""

import uuid

from crm_shared.events import Event


class TierChanged(Event):
    """A customer moved to another tier (up or down); None: no tier."""

    type = "rewards.tier.changed.v1"

    customer_id: uuid.UUID
    # Tier names, before and after.
    previous: str | None
    tier: str | None
    tier_id: uuid.UUID | None
