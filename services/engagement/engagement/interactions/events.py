"""The events engagement publishes about interactions and their authors (see docs/events.md)."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class AuthorSeen(Event):
    """A platform user appeared in the tenant for the first time (identity records the profile)."""

    type = "engagement.author.seen.v1"

    channel: str
    platform_user_id: str
    handle: str | None
    display_name: str | None
    followers: int | None = None
    verified: bool | None = None
    seen_at: datetime


class InteractionRecorded(Event):
    """A new interaction was ingested (an edit of a known one is not announced again)."""

    type = "engagement.interaction.recorded.v1"

    interaction_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel: str
    kind: str
    platform_id: str
    thread_id: str | None
    platform_user_id: str | None
    handle: str | None
    sentiment: float | None
    sentiment_label: str
    language: str
    occurred_at: datetime
    tracker_ids: list[uuid.UUID]
    brand_mentioned: bool
    rating: int | None = None
