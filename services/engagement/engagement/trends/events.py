"""The events engagement publishes about trends (see docs/events.md)."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class TrendSpiked(Event):
    """A tracker's or topic's volume in a complete hour was far above its recent baseline."""

    type = "engagement.trend.spiked.v1"

    dimension: str
    tracker_id: uuid.UUID | None
    topic: str | None
    hour: datetime
    volume: int
    baseline: float
    threshold: float
