"""The events connectors publish (through the outbox, with the publication's change)."""

import uuid
from datetime import datetime

from crm_shared.events import Event


class PublicationPublished(Event):
    """A care reply or staff post is on the platform now, under the platform's id."""

    type = "engagement.publication.published.v1"

    publication_id: uuid.UUID
    account_id: uuid.UUID
    channel: str
    kind: str
    platform_id: str
    interaction_id: uuid.UUID | None
    case_id: uuid.UUID | None
    published_at: datetime


class PublicationFailed(Event):
    """The platform refused a publication, or every attempt failed; staff may queue it again."""

    type = "engagement.publication.failed.v1"

    publication_id: uuid.UUID
    account_id: uuid.UUID
    channel: str
    kind: str
    error: str
    attempts: int
    interaction_id: uuid.UUID | None
    case_id: uuid.UUID | None
