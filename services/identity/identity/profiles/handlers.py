"""Engagement meets authors long before identity knows who they are: it announces them."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from identity.profiles import service
from identity.profiles.models import Channel
from identity.profiles.service import ProfileData

log = logging.getLogger(__name__)


class AuthorSeen(Event):
    """Identity's reading of ``engagement.author.seen.v1``."""

    type = "engagement.author.seen.v1"

    channel: str
    platform_user_id: str
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None
    verified: bool | None = None
    seen_at: datetime | None = None


async def record_author(event: AuthorSeen, *, envelope: Envelope, session: AsyncSession) -> None:
    """Upsert the author's social profile (a bad payload fails and is parked with its reason).

    Engagement's catch-all channel ``other`` names no platform a profile could live on: such
    authors are not recorded."""
    if event.channel not in set(Channel):
        log.info("no social profile for an author on channel %r", event.channel)
        return
    fields = event.model_dump(exclude={"type"})
    fields["verified"] = bool(event.verified)
    data = ProfileData.model_validate(fields)
    await service.upsert_profile(session=session, tenant_id=envelope.tenantid, data=data)
