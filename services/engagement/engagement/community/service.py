"""The community's operations: polls, ideas, contests and content reuse requests.

Votes are one per customer by primary key and inserted with ``ON CONFLICT DO NOTHING``, so
concurrent votes of one customer give one vote and CONFLICT for the rest. A vote locks its
poll or contest row ``FOR SHARE`` while it checks the window, so closing (``FOR UPDATE``)
and voting cannot cross. Choosing winners locks the contest ``FOR UPDATE`` and happens once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, Forbidden, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from crm_shared.privacy import consent_allows
from engagement.community.events import (
    ContentReuseDenied,
    ContentReuseGranted,
    ContentReuseRequested,
    ContestEntered,
    ContestWinnerChosen,
    IdeaStatusChanged,
    IdeaSubmitted,
    IdeaVoted,
    IdeaVoteWithdrawn,
    PollVoted,
)
from engagement.community.models import (
    IDEA_STATUSES,
    WINNER_CHOICE,
    ContentReuseRequest,
    Contest,
    ContestEntry,
    ContestVote,
    ContestWinner,
    Idea,
    IdeaStatusChange,
    IdeaVote,
    Poll,
    PollOption,
    PollVote,
)
from engagement.interactions.models import Interaction

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


def _required(value: str, *, field: str, limit: int) -> str:
    cleaned = clean_text(value, field=field, limit=limit)
    assert cleaned is not None
    return cleaned


def check_aware(value: datetime, *, field: str) -> datetime:
    """``value`` if it carries a time zone; BAD_USER_INPUT otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadUserInput(f"{field}: give a time zone (e.g. 2026-05-01T09:00:00Z)", field=field)
    return value


# --- polls -----------------------------------------------------------------------------------


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
    asked = _required(question, field="input.question", limit=500)
    labels = [
        _required(label, field=f"input.options.{i}", limit=200) for i, label in enumerate(options)
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


# --- ideas -----------------------------------------------------------------------------------

# under_review -> planned -> shipped, and declined from either open status; shipped and
# declined are final.
IDEA_TRANSITIONS: dict[str, frozenset[str]] = {
    "under_review": frozenset({"planned", "declined"}),
    "planned": frozenset({"shipped", "declined"}),
    "shipped": frozenset(),
    "declined": frozenset(),
}
IDEA_VOTING_STATUSES = frozenset({"under_review", "planned"})


def next_idea_status(current: str, target: str) -> str:
    """``target`` if an idea may move there from ``current``; BAD_USER_INPUT/CONFLICT if not."""
    if target not in IDEA_STATUSES:
        raise BadUserInput(
            f"input.status: must be one of {', '.join(IDEA_STATUSES)}", field="input.status"
        )
    if target not in IDEA_TRANSITIONS[current]:
        allowed = ", ".join(sorted(IDEA_TRANSITIONS[current])) or "none (it is final)"
        raise Conflict(
            f"input.status: an idea {current} cannot become {target} (allowed: {allowed})",
            field="input.status",
        )
    return target


async def submit_idea(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, title: str, body: str
) -> Idea:
    """A customer's new idea, under review."""
    idea = Idea(
        tenant_id=tenant_id,
        customer_id=customer_id,
        title=_required(title, field="input.title", limit=200),
        body=_required(body, field="input.body", limit=5000),
    )
    session.add(idea)
    await session.flush()
    await record_event(
        session,
        IdeaSubmitted(idea_id=idea.id, customer_id=customer_id),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    return idea


async def get_idea(
    *, session: AsyncSession, tenant_id: uuid.UUID, idea_id: uuid.UUID, lock: bool = False
) -> Idea | None:
    """The tenant's idea (locked for update when asked)."""
    query = select(Idea).where(Idea.tenant_id == tenant_id, Idea.id == idea_id)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def _idea_for_vote(
    session: AsyncSession, tenant_id: uuid.UUID, idea_id: uuid.UUID, customer_id: uuid.UUID
) -> Idea:
    idea = await get_idea(session=session, tenant_id=tenant_id, idea_id=idea_id, lock=True)
    if idea is None:
        raise NotFound("ideaId: no such idea", field="ideaId")
    if idea.customer_id == customer_id:
        raise BadUserInput("ideaId: you cannot vote on your own idea", field="ideaId")
    if idea.status not in IDEA_VOTING_STATUSES:
        raise Conflict(f"ideaId: voting has ended on a {idea.status} idea", field="ideaId")
    return idea


async def vote_idea(
    *, session: AsyncSession, tenant_id: uuid.UUID, idea_id: uuid.UUID, customer_id: uuid.UUID
) -> Idea:
    """The customer's vote for someone else's open idea; CONFLICT on a second one."""
    idea = await _idea_for_vote(session, tenant_id, idea_id, customer_id)
    inserted = await session.execute(
        insert(IdeaVote)
        .values(idea_id=idea.id, customer_id=customer_id, tenant_id=tenant_id)
        .on_conflict_do_nothing(index_elements=["idea_id", "customer_id"])
        .returning(col(IdeaVote.idea_id))
    )
    if inserted.first() is None:
        raise Conflict("ideaId: you have already voted for this idea", field="ideaId")
    idea.vote_count += 1
    session.add(idea)
    await session.flush()
    await record_event(
        session,
        IdeaVoted(idea_id=idea.id, customer_id=customer_id, author_id=idea.customer_id),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    return idea


async def withdraw_idea_vote(
    *, session: AsyncSession, tenant_id: uuid.UUID, idea_id: uuid.UUID, customer_id: uuid.UUID
) -> Idea:
    """Take the customer's vote back; NOT_FOUND when they had not voted."""
    idea = await get_idea(session=session, tenant_id=tenant_id, idea_id=idea_id, lock=True)
    if idea is None:
        raise NotFound("ideaId: no such idea", field="ideaId")
    removed = await session.execute(
        delete(IdeaVote)
        .where(
            col(IdeaVote.tenant_id) == tenant_id,
            col(IdeaVote.idea_id) == idea.id,
            col(IdeaVote.customer_id) == customer_id,
        )
        .returning(col(IdeaVote.idea_id))
    )
    if removed.first() is None:
        raise NotFound("ideaId: you have not voted for this idea", field="ideaId")
    idea.vote_count -= 1
    session.add(idea)
    await session.flush()
    await record_event(
        session,
        IdeaVoteWithdrawn(idea_id=idea.id, customer_id=customer_id, author_id=idea.customer_id),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    return idea


async def set_idea_status(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    idea_id: uuid.UUID,
    status: str,
    note: str | None,
    actor: str,
) -> tuple[Idea, str]:
    """Move an idea along its statuses, with a note; the idea and its previous status."""
    cleaned = clean_text(note, field="input.note", limit=1000, required=False)
    idea = await get_idea(session=session, tenant_id=tenant_id, idea_id=idea_id, lock=True)
    if idea is None:
        raise NotFound("input.ideaId: no such idea", field="input.ideaId")
    previous = idea.status
    idea.status = next_idea_status(previous, status)
    idea.status_note = cleaned
    idea.status_changed_at = utcnow()
    session.add(idea)
    session.add(
        IdeaStatusChange(
            tenant_id=tenant_id,
            idea_id=idea.id,
            previous=previous,
            status=idea.status,
            note=cleaned,
            actor=actor,
            changed_at=idea.status_changed_at,
        )
    )
    await session.flush()
    await record_event(
        session,
        IdeaStatusChanged(
            idea_id=idea.id,
            customer_id=idea.customer_id,
            previous_status=previous,
            status=idea.status,
            note=cleaned,
            voter_count=idea.vote_count,
        ),
        tenant_id=tenant_id,
        subject=str(idea.customer_id),
    )
    return idea, previous


async def list_ideas(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
    before: Position | None = None,
    by_votes: VotesPosition | None = None,
    order_by_votes: bool = False,
) -> list[Idea]:
    """The tenant's ideas, newest first, or most voted first (then newest)."""
    query = select(Idea).where(Idea.tenant_id == tenant_id)
    if status is not None:
        if status not in IDEA_STATUSES:
            raise BadUserInput(f"status: must be one of {', '.join(IDEA_STATUSES)}", field="status")
        query = query.where(Idea.status == status)
    if customer_id is not None:
        query = query.where(Idea.customer_id == customer_id)
    if not order_by_votes:
        page = keyset_page(
            query, col(Idea.created_at), col(Idea.id), before, limit=limit, newest_first=True
        )
        return list(await session.exec(page))
    key = tuple_(col(Idea.vote_count), col(Idea.created_at), col(Idea.id))
    if by_votes is not None:
        query = query.where(key < tuple_(*by_votes))
    query = query.order_by(
        col(Idea.vote_count).desc(), col(Idea.created_at).desc(), col(Idea.id).desc()
    )
    return list(await session.exec(query.limit(limit)))


async def customer_idea_votes(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    idea_ids: Sequence[uuid.UUID],
) -> set[uuid.UUID]:
    """Which of ``idea_ids`` the customer voted for."""
    rows = await session.exec(
        select(IdeaVote.idea_id).where(
            IdeaVote.tenant_id == tenant_id,
            IdeaVote.customer_id == customer_id,
            col(IdeaVote.idea_id).in_(idea_ids),
        )
    )
    return set(rows)


# --- contests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContestWindows:
    """When a contest takes entries and when it takes votes."""

    entries_open_at: datetime
    entries_close_at: datetime
    voting_opens_at: datetime
    voting_closes_at: datetime


def check_windows(windows: ContestWindows) -> ContestWindows:
    """The windows if they make sense: each opens before it closes; voting ends last."""
    check_aware(windows.entries_open_at, field="input.entriesOpenAt")
    check_aware(windows.entries_close_at, field="input.entriesCloseAt")
    check_aware(windows.voting_opens_at, field="input.votingOpensAt")
    check_aware(windows.voting_closes_at, field="input.votingClosesAt")
    if windows.entries_close_at <= windows.entries_open_at:
        raise BadUserInput(
            "input.entriesCloseAt: must be after entriesOpenAt", field="input.entriesCloseAt"
        )
    if windows.voting_opens_at < windows.entries_open_at:
        raise BadUserInput(
            "input.votingOpensAt: must not be before entriesOpenAt", field="input.votingOpensAt"
        )
    if windows.voting_closes_at <= windows.voting_opens_at:
        raise BadUserInput(
            "input.votingClosesAt: must be after votingOpensAt", field="input.votingClosesAt"
        )
    if windows.voting_closes_at < windows.entries_close_at:
        raise BadUserInput(
            "input.votingClosesAt: must not be before entriesCloseAt",
            field="input.votingClosesAt",
        )
    return windows


async def create_contest(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    title: str,
    description: str | None,
    windows: ContestWindows,
    winner_count: int,
    chosen_by: str,
    created_by: str,
) -> Contest:
    """A new contest."""
    name = _required(title, field="input.title", limit=200)
    about = clean_text(description, field="input.description", limit=5000, required=False)
    check_windows(windows)
    if not 1 <= winner_count <= 100:
        raise BadUserInput("input.winners: must be between 1 and 100", field="input.winners")
    if chosen_by not in WINNER_CHOICE:
        raise BadUserInput(
            f"input.chosenBy: must be one of {', '.join(WINNER_CHOICE)}", field="input.chosenBy"
        )
    contest = Contest(
        tenant_id=tenant_id,
        title=name,
        description=about,
        entries_open_at=windows.entries_open_at,
        entries_close_at=windows.entries_close_at,
        voting_opens_at=windows.voting_opens_at,
        voting_closes_at=windows.voting_closes_at,
        winner_count=winner_count,
        chosen_by=chosen_by,
        created_by=created_by,
    )
    session.add(contest)
    await session.flush()
    return contest


async def get_contest(
    *, session: AsyncSession, tenant_id: uuid.UUID, contest_id: uuid.UUID, lock: str | None = None
) -> Contest | None:
    """The tenant's contest (locked ``FOR SHARE``/``FOR UPDATE`` when asked)."""
    query = select(Contest).where(Contest.tenant_id == tenant_id, Contest.id == contest_id)
    if lock == "share":
        query = query.with_for_update(read=True)
    elif lock == "update":
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def list_contests(
    *, session: AsyncSession, tenant_id: uuid.UUID, limit: int, before: Position | None
) -> list[Contest]:
    """The tenant's contests, newest first."""
    query = select(Contest).where(Contest.tenant_id == tenant_id)
    page = keyset_page(
        query, col(Contest.created_at), col(Contest.id), before, limit=limit, newest_first=True
    )
    return list(await session.exec(page))


async def enter_contest(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    contest_id: uuid.UUID,
    customer_id: uuid.UUID,
    text: str | None,
    interaction_id: uuid.UUID | None,
    now: datetime | None = None,
) -> ContestEntry:
    """The customer's one entry (a text, one of their interactions, or both)."""
    now = now or utcnow()
    said = clean_text(text, field="input.text", limit=5000, required=False)
    if said is None and interaction_id is None:
        raise BadUserInput("input.text: give a text or an interactionId", field="input.text")
    contest = await get_contest(
        session=session, tenant_id=tenant_id, contest_id=contest_id, lock="share"
    )
    if contest is None:
        raise NotFound("input.contestId: no such contest", field="input.contestId")
    if not contest.entries_open_at <= now < contest.entries_close_at:
        raise Conflict(
            f"input.contestId: entries are taken from {contest.entries_open_at.isoformat()}"
            f" until {contest.entries_close_at.isoformat()}",
            field="input.contestId",
        )
    if interaction_id is not None:
        owned = await session.exec(
            select(Interaction.id).where(
                Interaction.tenant_id == tenant_id,
                Interaction.id == interaction_id,
                Interaction.customer_id == customer_id,
            )
        )
        if owned.first() is None:
            raise BadUserInput(
                "input.interactionId: not one of your interactions", field="input.interactionId"
            )
    entry_id = uuid.uuid4()
    inserted = await session.execute(
        insert(ContestEntry)
        .values(
            id=entry_id,
            tenant_id=tenant_id,
            contest_id=contest.id,
            customer_id=customer_id,
            text=said,
            interaction_id=interaction_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["contest_id", "customer_id"])
        .returning(col(ContestEntry.id))
    )
    if inserted.first() is None:
        raise Conflict(
            "input.contestId: you have already entered this contest", field="input.contestId"
        )
    await record_event(
        session,
        ContestEntered(contest_id=contest.id, entry_id=entry_id, customer_id=customer_id),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    entry = await session.get(ContestEntry, entry_id)
    assert entry is not None
    return entry


async def get_entry(
    *, session: AsyncSession, tenant_id: uuid.UUID, entry_id: uuid.UUID
) -> ContestEntry | None:
    """The tenant's contest entry."""
    rows = await session.exec(
        select(ContestEntry).where(ContestEntry.tenant_id == tenant_id, ContestEntry.id == entry_id)
    )
    return rows.first()


async def vote_contest_entry(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    entry_id: uuid.UUID,
    customer_id: uuid.UUID,
    now: datetime | None = None,
) -> ContestEntry:
    """The customer's one vote in a contest, for an entry not their own."""
    now = now or utcnow()
    entry = await get_entry(session=session, tenant_id=tenant_id, entry_id=entry_id)
    if entry is None:
        raise NotFound("entryId: no such entry", field="entryId")
    contest = await get_contest(
        session=session, tenant_id=tenant_id, contest_id=entry.contest_id, lock="share"
    )
    assert contest is not None
    if not contest.voting_opens_at <= now < contest.voting_closes_at:
        raise Conflict(
            f"entryId: voting is open from {contest.voting_opens_at.isoformat()}"
            f" until {contest.voting_closes_at.isoformat()}",
            field="entryId",
        )
    if entry.customer_id == customer_id:
        raise BadUserInput("entryId: you cannot vote for your own entry", field="entryId")
    inserted = await session.execute(
        insert(ContestVote)
        .values(
            contest_id=contest.id,
            customer_id=customer_id,
            tenant_id=tenant_id,
            entry_id=entry.id,
            voted_at=now,
        )
        .on_conflict_do_nothing(index_elements=["contest_id", "customer_id"])
        .returning(col(ContestVote.entry_id))
    )
    if inserted.first() is None:
        raise Conflict("entryId: you have already voted in this contest", field="entryId")
    await session.execute(
        update(ContestEntry)
        .where(col(ContestEntry.id) == entry.id)
        .values(vote_count=ContestEntry.vote_count + 1)
    )
    await session.refresh(entry)
    return entry


async def list_entries(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    contest_id: uuid.UUID,
    limit: int,
    after: Position | None,
) -> list[ContestEntry]:
    """A contest's entries in the order they came."""
    query = select(ContestEntry).where(
        ContestEntry.tenant_id == tenant_id, ContestEntry.contest_id == contest_id
    )
    page = keyset_page(
        query, col(ContestEntry.created_at), col(ContestEntry.id), after, limit=limit
    )
    return list(await session.exec(page))


async def contest_winners(
    *, session: AsyncSession, tenant_id: uuid.UUID, contest_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ContestWinner]]:
    """Each contest's winners by rank."""
    rows = await session.exec(
        select(ContestWinner)
        .where(ContestWinner.tenant_id == tenant_id, col(ContestWinner.contest_id).in_(contest_ids))
        .order_by(col(ContestWinner.contest_id), col(ContestWinner.rank))
    )
    found: dict[uuid.UUID, list[ContestWinner]] = {}
    for row in rows:
        found.setdefault(row.contest_id, []).append(row)
    return found


def rank_entries(entries: Sequence[ContestEntry], count: int) -> list[ContestEntry]:
    """The rule: most votes first, ties to the earliest entry (then the smaller id)."""
    ordered = sorted(entries, key=lambda e: (-e.vote_count, e.created_at, e.id))
    return ordered[:count]


async def choose_winners(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    contest_id: uuid.UUID,
    entry_ids: Sequence[uuid.UUID] | None,
    chosen_by: str,
    now: datetime | None = None,
) -> list[ContestWinner]:
    """Choose the winners once voting has closed: ``entry_ids`` in rank order, or by the rule.

    A second call returns the winners already chosen and announces nothing again.
    """
    now = now or utcnow()
    contest = await get_contest(
        session=session, tenant_id=tenant_id, contest_id=contest_id, lock="update"
    )
    if contest is None:
        raise NotFound("contestId: no such contest", field="contestId")
    if contest.winners_chosen_at is not None:
        chosen = (
            await contest_winners(session=session, tenant_id=tenant_id, contest_ids=[contest.id])
        ).get(contest.id, [])
        if entry_ids is not None and list(entry_ids) != [w.entry_id for w in chosen]:
            raise Conflict("contestId: the winners were already chosen", field="contestId")
        return chosen
    if now < contest.voting_closes_at:
        raise Conflict(
            f"contestId: voting closes at {contest.voting_closes_at.isoformat()}",
            field="contestId",
        )
    rows = await session.exec(
        select(ContestEntry).where(
            ContestEntry.tenant_id == tenant_id, ContestEntry.contest_id == contest.id
        )
    )
    entries = list(rows)
    if entry_ids is None:
        picked = rank_entries(entries, contest.winner_count)
    else:
        by_id = {e.id: e for e in entries}
        if not 1 <= len(entry_ids) <= contest.winner_count or len(set(entry_ids)) != len(entry_ids):
            raise BadUserInput(
                f"entryIds: give 1 to {contest.winner_count} different entries",
                field="entryIds",
            )
        if any(i not in by_id for i in entry_ids):
            raise BadUserInput("entryIds: not all are entries of this contest", field="entryIds")
        picked = [by_id[i] for i in entry_ids]
    winners = [
        ContestWinner(
            contest_id=contest.id,
            rank=rank,
            tenant_id=tenant_id,
            entry_id=entry.id,
            customer_id=entry.customer_id,
            chosen_by=chosen_by,
            chosen_at=now,
        )
        for rank, entry in enumerate(picked, start=1)
    ]
    session.add_all(winners)
    contest.winners_chosen_at = now
    session.add(contest)
    await session.flush()
    for winner in winners:
        await record_event(
            session,
            ContestWinnerChosen(
                contest_id=contest.id,
                entry_id=winner.entry_id,
                customer_id=winner.customer_id,
                rank=winner.rank,
            ),
            tenant_id=tenant_id,
            subject=str(winner.customer_id),
        )
    return winners


async def choose_due_winners(db: Database, *, now: datetime | None = None) -> int:
    """The periodic rule: winners of every rule contest whose voting closed; how many contests.

    Each contest is chosen in its own transaction under its row lock, so replicas running
    this at once choose each contest once.
    """
    now = now or utcnow()
    async with db.session() as session:
        due = await session.exec(
            select(Contest.tenant_id, Contest.id)
            .where(
                col(Contest.winners_chosen_at).is_(None),
                Contest.chosen_by == "rule",
                Contest.voting_closes_at <= now,
            )
            .order_by(col(Contest.voting_closes_at))
            .limit(100)
        )
        contests = list(due)
    for tenant_id, contest_id in contests:
        async with db.session() as session, session.begin():
            await choose_winners(
                session=session,
                tenant_id=tenant_id,
                contest_id=contest_id,
                entry_ids=None,
                chosen_by="rule",
                now=now,
            )
    return len(contests)


# --- content reuse ---------------------------------------------------------------------------

ANSWER_TAG = re.compile(r"(?<![\w#])#(yes|no)(?!\w)", re.IGNORECASE)


def reply_answer(text: str | None) -> bool | None:
    """What a reply says to a reuse request: ``#yes`` True, ``#no`` False, else (or both) None."""
    tags = {tag.lower() for tag in ANSWER_TAG.findall(text or "")}
    if len(tags) != 1:
        return None
    return tags == {"yes"}


async def request_content_reuse(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    interaction_id: uuid.UUID,
    purpose: str,
    requested_by: str,
) -> ContentReuseRequest:
    """Ask an interaction's author to let the brand reuse it; one open request per item."""
    why = _required(purpose, field="input.purpose", limit=1000)
    found = await session.exec(
        select(Interaction).where(
            Interaction.tenant_id == tenant_id, Interaction.id == interaction_id
        )
    )
    interaction = found.first()
    if interaction is None:
        raise NotFound("input.interactionId: no such interaction", field="input.interactionId")
    request = ContentReuseRequest(
        tenant_id=tenant_id,
        interaction_id=interaction.id,
        channel=interaction.channel,
        author_platform_user_id=interaction.author_platform_user_id,
        customer_id=interaction.customer_id,
        purpose=why,
        requested_by=requested_by,
    )
    session.add(request)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "input.interactionId: a request for this interaction awaits its author's answer",
            field="input.interactionId",
        ) from None
    await record_event(
        session,
        ContentReuseRequested(
            request_id=request.id,
            interaction_id=interaction.id,
            customer_id=interaction.customer_id,
            channel=interaction.channel,
        ),
        tenant_id=tenant_id,
        subject=str(interaction.customer_id or request.id),
    )
    return request


async def get_reuse_request(
    *, session: AsyncSession, tenant_id: uuid.UUID, request_id: uuid.UUID, lock: bool = False
) -> ContentReuseRequest | None:
    """The tenant's reuse request (locked for update when asked)."""
    query = select(ContentReuseRequest).where(
        ContentReuseRequest.tenant_id == tenant_id, ContentReuseRequest.id == request_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def _author_customer(session: AsyncSession, request: ContentReuseRequest) -> uuid.UUID | None:
    """The author's customer now (the interaction may have been linked since it was asked)."""
    found = await session.exec(
        select(Interaction.customer_id).where(
            Interaction.tenant_id == request.tenant_id, Interaction.id == request.interaction_id
        )
    )
    return found.first() or request.customer_id


async def answer_content_reuse(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    request_id: uuid.UUID,
    granted: bool,
    via: str,
    customer_id: uuid.UUID | None = None,
    note: str | None = None,
    answer_interaction_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> ContentReuseRequest:
    """Record the author's answer.

    ``via="customer"``: the author answering with their own token (``customer_id``);
    ``via="reply"``: their ``#yes``/``#no`` reply; ``via="staff"``: staff recording an answer
    given elsewhere, which may grant only while the author consents to ``content_reuse``.
    """
    now = now or utcnow()
    cleaned = clean_text(note, field="input.note", limit=1000, required=False)
    request = await get_reuse_request(
        session=session, tenant_id=tenant_id, request_id=request_id, lock=True
    )
    author = await _author_customer(session, request) if request is not None else None
    if request is None or (via == "customer" and (author is None or author != customer_id)):
        # Another customer's request is as absent as one that does not exist.
        raise NotFound("input.requestId: no such request", field="input.requestId")
    if request.status != "requested":
        raise Conflict(
            f"input.requestId: the author already answered ({request.status})",
            field="input.requestId",
        )
    if via == "staff" and granted:
        consenting = (
            await consent_allows(
                session,
                "engagement",
                tenant_id=tenant_id,
                customer_ids=[author],
                purpose=CONSENT_PURPOSE,
            )
            if author is not None
            else set()
        )
        if author not in consenting:
            raise Forbidden(
                "input.granted: without the author's content_reuse consent only the author's"
                " own answer can grant this request",
                field="input.granted",
            )
    request.status = "granted" if granted else "denied"
    request.answered_via = via
    request.answered_at = now
    request.answer_note = cleaned
    request.answer_interaction_id = answer_interaction_id
    request.customer_id = author
    session.add(request)
    await session.flush()
    event = ContentReuseGranted if granted else ContentReuseDenied
    await record_event(
        session,
        event(
            request_id=request.id,
            interaction_id=request.interaction_id,
            customer_id=author,
            via=via,
        ),
        tenant_id=tenant_id,
        subject=str(author or request.id),
    )
    return request


async def answer_from_reply(
    *, session: AsyncSession, tenant_id: uuid.UUID, interaction_id: uuid.UUID
) -> ContentReuseRequest | None:
    """An ingested reply of an author, ``#yes`` or ``#no``, answers their open request in the
    same thread (a reply to the asked item, or anywhere in its conversation)."""
    found = await session.exec(
        select(Interaction).where(
            Interaction.tenant_id == tenant_id, Interaction.id == interaction_id
        )
    )
    reply = found.first()
    if reply is None or reply.author_platform_user_id is None:
        return None
    answer = reply_answer(reply.text)
    places = []
    if reply.parent_id is not None:
        places.append(col(Interaction.platform_id) == reply.parent_id)
    if reply.thread_id is not None:
        places.append(col(Interaction.thread_id) == reply.thread_id)
    if answer is None or not places:
        return None
    asked = (
        select(ContentReuseRequest.id)
        .join(Interaction, col(Interaction.id) == ContentReuseRequest.interaction_id)
        .where(
            ContentReuseRequest.tenant_id == tenant_id,
            ContentReuseRequest.status == "requested",
            ContentReuseRequest.channel == reply.channel,
            ContentReuseRequest.author_platform_user_id == reply.author_platform_user_id,
            col(Interaction.id) != reply.id,
            or_(*places),
            ContentReuseRequest.created_at <= reply.received_at,
        )
        .order_by(col(ContentReuseRequest.created_at).desc())
        .limit(1)
    )
    request_id = (await session.exec(asked)).first()
    if request_id is None:
        return None
    return await answer_content_reuse(
        session=session,
        tenant_id=tenant_id,
        request_id=request_id,
        granted=answer,
        via="reply",
        answer_interaction_id=reply.id,
    )


async def list_reuse_requests(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    before: Position | None,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> list[ContentReuseRequest]:
    """The tenant's reuse requests (a customer's own, when given), newest first."""
    query = select(ContentReuseRequest).where(ContentReuseRequest.tenant_id == tenant_id)
    if status is not None:
        query = query.where(ContentReuseRequest.status == status)
    if customer_id is not None:
        query = query.where(ContentReuseRequest.customer_id == customer_id)
    page = keyset_page(
        query,
        col(ContentReuseRequest.created_at),
        col(ContentReuseRequest.id),
        before,
        limit=limit,
        newest_first=True,
    )
    return list(await session.exec(page))


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
