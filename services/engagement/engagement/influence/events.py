"""The events engagement publishes about influence (see docs/events.md)."""

import uuid

from crm_shared.events import Event


class InfluencerIdentified(Event):
    """A customer became, or stopped being, an influencer, advocate or detractor (``score`` is
    None when they are no longer scored: their profiling consent was withdrawn)."""

    type = "engagement.influencer.identified.v1"

    customer_id: uuid.UUID
    score: float | None
    influencer: bool
    advocate: bool
    detractor: bool
