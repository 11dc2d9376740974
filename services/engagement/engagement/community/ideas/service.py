"""Ideas: customers submit and vote; staff move them under_review -> planned -> shipped
(or declined)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from engagement.community.events import (
    IdeaStatusChanged,
    IdeaSubmitted,
    IdeaVoted,
    IdeaVoteWithdrawn,
)
from engagement.community.models import (
    IDEA_STATUSES,
    Idea,
    IdeaStatusChange,
    IdeaVote,
)
from engagement.community.service import Position, VotesPosition, clean_text, required_text

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
        title=required_text(title, field="input.title", limit=200),
        body=required_text(body, field="input.body", limit=5000),
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
