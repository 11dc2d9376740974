"""Contests: entries in a window, votes in another, winners chosen once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from engagement.community.events import (
    ContestEntered,
    ContestWinnerChosen,
)
from engagement.community.models import (
    WINNER_CHOICE,
    Contest,
    ContestEntry,
    ContestVote,
    ContestWinner,
)
from engagement.community.service import Position, check_aware, clean_text, required_text
from engagement.interactions.models import Interaction


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
    name = required_text(title, field="input.title", limit=200)
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
