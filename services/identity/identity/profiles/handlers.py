"""Engagement meets authors long before identity knows who they are: it announces them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from identity.profiles import service
from identity.profiles.service import ProfileData


class AuthorSeen(Event):
    """Identity's reading of ``engagement.author.seen.v1``."""

    type = "engagement.author.seen.v1"

    channel: str
    platform_user_id: str
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None
    verified: bool = False
    seen_at: datetime | None = None


async def record_author(event: AuthorSeen, *, envelope: Envelope, session: AsyncSession) -> None:
    """Upsert the author's social profile (a bad payload fails and is parked with its reason)."""
    data = ProfileData.model_validate(event.model_dump(exclude={"type"}))
    await service.upsert_profile(session=session, tenant_id=envelope.tenantid, data=data)
