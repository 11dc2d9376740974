"""The events engagement publishes about participation segments (see docs/events.md)."""

import uuid

from crm_shared.events import Event


class SegmentChanged(Event):
    """A customer moved to another participation segment (``previous`` is None the first time)."""

    type = "engagement.segment.changed.v1"

    customer_id: uuid.UUID
    previous: str | None
    segment: str
