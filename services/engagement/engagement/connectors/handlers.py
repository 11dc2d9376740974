"""A care reply recorded through ``replyToCase`` reaches the publisher through the outbox: its
``engagement.interaction.recorded.v1`` queues it on the brand's connected account."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import Handler
from engagement.connectors import service


class BrandReplyRecorded(Event):
    """Connectors' reading of ``engagement.interaction.recorded.v1``."""

    type = "engagement.interaction.recorded.v1"

    interaction_id: uuid.UUID
    kind: str
    platform_id: str


async def queue_care_reply(
    event: BrandReplyRecorded, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Queue the brand's reply for publishing when its account is connected (once)."""
    if event.kind != "reply" or not event.platform_id.startswith("crm-reply-"):
        return
    await service.queue_care_reply(
        session=session, tenant_id=envelope.tenantid, interaction_id=event.interaction_id
    )


CONNECTOR_HANDLERS: list[Handler[Any]] = [Handler(BrandReplyRecorded, queue_care_reply)]
