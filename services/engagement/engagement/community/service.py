"""The community's shared rules (text checks) and what privacy asks of it (export,
erasure); polls, ideas, contests and content reuse live in their own packages.

Votes are one per customer by primary key and inserted with ``ON CONFLICT DO NOTHING``, so
concurrent votes of one customer give one vote and CONFLICT for the rest. A vote locks its
poll or contest row ``FOR SHARE`` while it checks the window, so closing (``FOR UPDATE``)
and voting cannot cross. Choosing winners locks the contest ``FOR UPDATE`` and happens once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.errors import BadUserInput
from engagement.community.models import (
    ContentReuseRequest,
    ContestEntry,
    ContestVote,
    ContestWinner,
    Idea,
    IdeaVote,
    PollVote,
)

Position = tuple[datetime, uuid.UUID]
VotesPosition = tuple[int, datetime, uuid.UUID]

MAX_OPTIONS = 20
CONSENT_PURPOSE = "content_reuse"


def clean_text(value: str | None, *, field: str, limit: int, required: bool = True) -> str | None:
    """``value`` trimmed, 1..``limit`` characters (None allowed unless ``required``)."""
    cleaned = value.strip() if value is not None else ""
    if not cleaned:
        if required:
            raise BadUserInput(f"{field}: must not be empty", field=field)
        return None
    if len(cleaned) > limit:
        raise BadUserInput(f"{field}: at most {limit} characters", field=field)
    return cleaned


def required_text(value: str, *, field: str, limit: int) -> str:
    cleaned = clean_text(value, field=field, limit=limit)
    assert cleaned is not None
    return cleaned


def check_aware(value: datetime, *, field: str) -> datetime:
    """``value`` if it carries a time zone; BAD_USER_INPUT otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadUserInput(f"{field}: give a time zone (e.g. 2026-05-01T09:00:00Z)", field=field)
    return value


async def export_community(
    session: AsyncSession, *, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, Any]:
    """The customer's ideas, votes, contest entries and reuse requests as plain JSON."""
    mine: dict[str, Any] = {}
    for key, model in (
        ("ideas", Idea),
        ("idea_votes", IdeaVote),
        ("poll_votes", PollVote),
        ("contest_entries", ContestEntry),
        ("contest_votes", ContestVote),
        ("contest_wins", ContestWinner),
        ("content_reuse_requests", ContentReuseRequest),
    ):
        rows = await session.exec(
            select(model).where(
                col(model.tenant_id) == tenant_id, col(model.customer_id) == customer_id
            )
        )
        mine[key] = [row.model_dump(mode="json", exclude={"tenant_id"}) for row in rows]
    return mine


async def erase_community(
    session: AsyncSession, *, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Erasure: the person's ideas, entries, wins and reuse requests go; their votes stay
    counted under a random voter id, so results do not change and no one can tell who."""
    ids = list(customer_ids)
    for table in ("poll_votes", "idea_votes", "contest_votes"):
        await session.execute(
            text(
                f"UPDATE engagement.{table} SET customer_id = gen_random_uuid()"
                " WHERE tenant_id = :t AND customer_id = ANY(:ids)"
            ),
            {"t": tenant_id, "ids": ids},
        )
    for model in (ContestWinner, ContestEntry, Idea, ContentReuseRequest):
        await session.execute(
            delete(model).where(col(model.tenant_id) == tenant_id, col(model.customer_id).in_(ids))
        )
