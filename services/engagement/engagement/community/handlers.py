"""Engagement's own events the community reacts to: a ``#yes``/``#no`` reply answers a reuse
request."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import Handler
from engagement.community.reuse import service


class ReplyRecorded(Event):
    """The community's reading of ``engagement.interaction.recorded.v1``."""

    type = "engagement.interaction.recorded.v1"

    interaction_id: uuid.UUID


async def answer_reuse_by_reply(
    event: ReplyRecorded, *, envelope: Envelope, session: AsyncSession
) -> None:
    """An author's ``#yes`` or ``#no`` in the thread of an item the brand asked to reuse."""
    await service.answer_from_reply(
        session=session, tenant_id=envelope.tenantid, interaction_id=event.interaction_id
    )


COMMUNITY_HANDLERS: list[Handler[Any]] = [Handler(ReplyRecorded, answer_reuse_by_reply)]
