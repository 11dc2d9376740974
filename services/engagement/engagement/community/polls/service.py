"""Polls: staff ask, customers vote once, results by option."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from engagement.community.events import (
    PollVoted,
)
from engagement.community.models import (
    Poll,
    PollOption,
    PollVote,
)
from engagement.community.service import MAX_OPTIONS, Position, check_aware, required_text


def poll_is_open(poll: Poll, now: datetime) -> bool:
    """Whether ``poll`` takes votes at ``now``."""
    return poll.closed_at is None and poll.opens_at <= now < poll.closes_at


async def create_poll(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    question: str,
    options: Sequence[str],
    opens_at: datetime | None,
    closes_at: datetime,
    created_by: str,
    now: datetime | None = None,
) -> tuple[Poll, list[PollOption]]:
    """A new poll with its options in the given order."""
    now = now or utcnow()
    asked = required_text(question, field="input.question", limit=500)
    labels = [
        required_text(label, field=f"input.options.{i}", limit=200)
        for i, label in enumerate(options)
    ]
    if not 2 <= len(labels) <= MAX_OPTIONS:
        raise BadUserInput(f"input.options: give 2 to {MAX_OPTIONS} options", field="input.options")
    if len({label.casefold() for label in labels}) != len(labels):
        raise BadUserInput("input.options: each option must differ", field="input.options")
    opens = check_aware(opens_at, field="input.opensAt") if opens_at else now
    closes = check_aware(closes_at, field="input.closesAt")
    if closes <= opens:
        raise BadUserInput("input.closesAt: must be after opensAt", field="input.closesAt")
    if closes <= now:
        raise BadUserInput("input.closesAt: must be in the future", field="input.closesAt")
    poll = Poll(
        tenant_id=tenant_id, question=asked, opens_at=opens, closes_at=closes, created_by=created_by
    )
    session.add(poll)
    await session.flush()
    rows = [
        PollOption(tenant_id=tenant_id, poll_id=poll.id, position=i, label=label)
        for i, label in enumerate(labels)
    ]
    session.add_all(rows)
    await session.flush()
    return poll, rows


async def get_poll(
    *, session: AsyncSession, tenant_id: uuid.UUID, poll_id: uuid.UUID, lock: str | None = None
) -> Poll | None:
    """The tenant's poll (locked ``FOR SHARE``/``FOR UPDATE`` when asked)."""
    query = select(Poll).where(Poll.tenant_id == tenant_id, Poll.id == poll_id)
    if lock == "share":
        query = query.with_for_update(read=True)
    elif lock == "update":
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def list_polls(
    *, session: AsyncSession, tenant_id: uuid.UUID, limit: int, before: Position | None
) -> list[Poll]:
    """The tenant's polls, newest first."""
    query = select(Poll).where(Poll.tenant_id == tenant_id)
    page = keyset_page(
        query, col(Poll.created_at), col(Poll.id), before, limit=limit, newest_first=True
    )
    return list(await session.exec(page))


async def close_poll(
    *, session: AsyncSession, tenant_id: uuid.UUID, poll_id: uuid.UUID, now: datetime | None = None
) -> Poll:
    """Stop a poll taking votes now; CONFLICT when it is already closed."""
    now = now or utcnow()
    poll = await get_poll(session=session, tenant_id=tenant_id, poll_id=poll_id, lock="update")
    if poll is None:
        raise NotFound("pollId: no such poll", field="pollId")
    if poll.closed_at is not None or poll.closes_at <= now:
        raise Conflict("pollId: the poll is already closed", field="pollId")
    poll.closed_at = now
    session.add(poll)
    await session.flush()
    return poll


async def vote_poll(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    poll_id: uuid.UUID,
    option_id: uuid.UUID,
    customer_id: uuid.UUID,
    now: datetime | None = None,
) -> PollVote:
    """The customer's one vote; CONFLICT outside the poll's window or on a second vote."""
    now = now or utcnow()
    poll = await get_poll(session=session, tenant_id=tenant_id, poll_id=poll_id, lock="share")
    if poll is None:
        raise NotFound("input.pollId: no such poll", field="input.pollId")
    if now < poll.opens_at:
        raise Conflict(
            f"input.pollId: the poll opens at {poll.opens_at.isoformat()}", field="input.pollId"
        )
    if not poll_is_open(poll, now):
        closed = poll.closed_at or poll.closes_at
        raise Conflict(
            f"input.pollId: the poll closed at {closed.isoformat()}", field="input.pollId"
        )
    option = await session.exec(
        select(PollOption.id).where(PollOption.poll_id == poll.id, PollOption.id == option_id)
    )
    if option.first() is None:
        raise BadUserInput("input.optionId: not an option of this poll", field="input.optionId")
    inserted = await session.execute(
        insert(PollVote)
        .values(
            poll_id=poll.id,
            customer_id=customer_id,
            tenant_id=tenant_id,
            option_id=option_id,
            voted_at=now,
        )
        .on_conflict_do_nothing(index_elements=["poll_id", "customer_id"])
        .returning(col(PollVote.poll_id))
    )
    if inserted.first() is None:
        raise Conflict("input.pollId: you have already voted in this poll", field="input.pollId")
    await record_event(
        session,
        PollVoted(poll_id=poll.id, customer_id=customer_id, option_id=option_id),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    return PollVote(
        poll_id=poll.id,
        customer_id=customer_id,
        tenant_id=tenant_id,
        option_id=option_id,
        voted_at=now,
    )


@dataclass(frozen=True)
class OptionResult:
    """One option of a poll and how many voted for it."""

    option: PollOption
    votes: int


async def poll_results(
    *, session: AsyncSession, tenant_id: uuid.UUID, poll_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[OptionResult]]:
    """Each poll's options in order, with their vote counts."""
    counts = (
        select(col(PollVote.option_id), func.count().label("votes"))
        .where(PollVote.tenant_id == tenant_id, col(PollVote.poll_id).in_(poll_ids))
        .group_by(col(PollVote.option_id))
        .subquery()
    )
    rows = await session.execute(
        select(PollOption, func.coalesce(counts.c.votes, 0))
        .outerjoin(counts, counts.c.option_id == PollOption.id)
        .where(PollOption.tenant_id == tenant_id, col(PollOption.poll_id).in_(poll_ids))
        .order_by(col(PollOption.poll_id), col(PollOption.position))
    )
    found: dict[uuid.UUID, list[OptionResult]] = {}
    for option, votes in rows.all():
        found.setdefault(option.poll_id, []).append(OptionResult(option, int(votes)))
    return found


async def customer_poll_votes(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    poll_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, uuid.UUID]:
    """The option the customer chose in each of ``poll_ids`` they voted in."""
    rows = await session.exec(
        select(PollVote).where(
            PollVote.tenant_id == tenant_id,
            PollVote.customer_id == customer_id,
            col(PollVote.poll_id).in_(poll_ids),
        )
    )
    return {row.poll_id: row.option_id for row in rows}
