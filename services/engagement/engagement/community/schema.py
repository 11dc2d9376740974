"""The community in the graph: polls, ideas, contests and content reuse requests.

Reading needs ``community:read``; staff run the community with ``community:manage``; customers
take part with ``community:participate`` on their own customer token (a vote, an idea or an
entry is always the token's customer: no one votes for someone else).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.audit import record_staff_action
from crm_shared.auth import Permission, Principal
from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Forbidden
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import (
    Connection,
    check_first,
    connection,
    decode_cursor,
    encode_cursor,
)
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.community import service
from engagement.community.models import (
    REUSE_STATUSES,
    ContentReuseRequest,
    Contest,
    ContestEntry,
    ContestWinner,
    Idea,
    Poll,
)


def _participant(info: CrmInfo) -> tuple[Principal, uuid.UUID]:
    """The customer taking part, from their own token; FORBIDDEN for anyone else (the field
    checks community:participate first)."""
    principal = info.context.principal
    if principal.kind != "customer" or principal.customer_id is None:
        raise Forbidden("only a customer takes part, with their own customer token")
    return principal, principal.customer_id


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    record_type: str,
    record_id: uuid.UUID,
    details: dict[str, str | int | None] | None = None,
) -> None:
    if principal.kind == "staff":
        await record_staff_action(
            session=session,
            principal=principal,
            action=action,
            record_type=record_type,
            record_id=record_id,
            details=dict(details or {}),
        )


def _position(after: str | None) -> tuple[datetime, uuid.UUID] | None:
    return decode_cursor(after) if after is not None else None


# --- polls -----------------------------------------------------------------------------------


async def _poll_results(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[service.OptionResult]]:
    found: Mapping[uuid.UUID, list[service.OptionResult]] = await service.poll_results(
        session=session, tenant_id=tenant_id, poll_ids=list(ids)
    )
    return found


def poll_results_loader(info: CrmInfo) -> DataLoader[uuid.UUID, list[service.OptionResult]]:
    """The request's batch loader of poll options with their counts."""
    return keyed_loader(info, "poll_results", _poll_results, [])


def my_poll_votes_loader(
    info: CrmInfo, customer_id: uuid.UUID
) -> DataLoader[uuid.UUID, uuid.UUID | None]:
    """The request's batch loader of the calling customer's choice in each poll."""

    async def fetch(
        session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, uuid.UUID | None]:
        found: Mapping[uuid.UUID, uuid.UUID | None] = await service.customer_poll_votes(
            session=session, tenant_id=tenant_id, customer_id=customer_id, poll_ids=list(ids)
        )
        return found

    return keyed_loader(info, f"my_poll_votes:{customer_id}", fetch, None)


@strawberry.type(name="PollOption")
class PollOptionType:
    """One answer of a poll and how many customers chose it."""

    id: strawberry.ID
    label: str
    position: int
    votes: int


@strawberry.type(name="Poll")
class PollType:
    """A question to the community with options; one vote per customer while it is open."""

    id: strawberry.ID
    question: str
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime | None = strawberry.field(description="When staff closed it early.")
    created_at: datetime
    is_open: bool = strawberry.field(description="Whether it takes votes now.")

    @strawberry.field(
        description="The options in order, with their vote counts.",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def options(self, info: CrmInfo) -> list[PollOptionType]:
        results = await poll_results_loader(info).load(uuid.UUID(str(self.id)))
        return [
            PollOptionType(
                id=strawberry.ID(str(r.option.id)),
                label=r.option.label,
                position=r.option.position,
                votes=r.votes,
            )
            for r in results
        ]

    @strawberry.field(
        description="How many customers voted.",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def total_votes(self, info: CrmInfo) -> int:
        results = await poll_results_loader(info).load(uuid.UUID(str(self.id)))
        return sum(r.votes for r in results)

    @strawberry.field(
        description="The option the calling customer chose (null for staff).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def my_vote(self, info: CrmInfo) -> strawberry.ID | None:
        principal = info.context.principal
        if principal.customer_id is None:
            return None
        chosen = await my_poll_votes_loader(info, principal.customer_id).load(
            uuid.UUID(str(self.id))
        )
        return strawberry.ID(str(chosen)) if chosen else None

    @classmethod
    def from_model(cls, row: Poll) -> PollType:
        return cls(
            id=strawberry.ID(str(row.id)),
            question=row.question,
            opens_at=row.opens_at,
            closes_at=row.closes_at,
            closed_at=row.closed_at,
            created_at=row.created_at,
            is_open=service.poll_is_open(row, utcnow()),
        )


@strawberry.input
class CreatePollInput:
    question: str
    options: list[str] = strawberry.field(description="2 to 20 different answers, in order.")
    closes_at: datetime
    opens_at: datetime | None = strawberry.field(default=None, description="Default: now.")


@strawberry.input
class VotePollInput:
    poll_id: strawberry.ID
    option_id: strawberry.ID


# --- ideas -----------------------------------------------------------------------------------


@strawberry.enum(name="IdeaOrder")
class IdeaOrder(Enum):
    RECENT = "recent"
    VOTES = "votes"


def _idea_cursor(row: Idea, order: IdeaOrder) -> str:
    if order is IdeaOrder.RECENT:
        return encode_cursor(row.created_at, row.id)
    raw = f"{row.vote_count}|{row.created_at.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _votes_position(after: str | None) -> service.VotesPosition | None:
    if after is None:
        return None
    try:
        votes, at, id_ = base64.urlsafe_b64decode(after.encode()).decode().split("|")
        return int(votes), datetime.fromisoformat(at), uuid.UUID(id_)
    except (ValueError, UnicodeDecodeError):
        raise BadUserInput("after: not a valid cursor", field="after") from None


def my_idea_votes_loader(info: CrmInfo, customer_id: uuid.UUID) -> DataLoader[uuid.UUID, bool]:
    """The request's batch loader of whether the calling customer voted for each idea."""

    async def fetch(
        session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, bool]:
        voted = await service.customer_idea_votes(
            session=session, tenant_id=tenant_id, customer_id=customer_id, idea_ids=list(ids)
        )
        return dict.fromkeys(voted, True)

    return keyed_loader(info, f"my_idea_votes:{customer_id}", fetch, False)


@strawberry.type(name="Idea")
class IdeaType:
    """A customer's idea: under_review, planned, shipped or declined."""

    id: strawberry.ID
    customer_id: strawberry.ID = strawberry.field(description="Who submitted it.")
    title: str
    body: str
    status: str = strawberry.field(description="under_review, planned, shipped or declined.")
    status_note: str | None = strawberry.field(description="Staff's note on the last change.")
    status_changed_at: datetime
    votes: int
    created_at: datetime

    @strawberry.field(
        description="Whether the calling customer voted for it (false for staff).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def voted_by_me(self, info: CrmInfo) -> bool:
        principal = info.context.principal
        if principal.customer_id is None:
            return False
        return await my_idea_votes_loader(info, principal.customer_id).load(uuid.UUID(str(self.id)))

    @classmethod
    def from_model(cls, row: Idea) -> IdeaType:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            title=row.title,
            body=row.body,
            status=row.status,
            status_note=row.status_note,
            status_changed_at=row.status_changed_at,
            votes=row.vote_count,
            created_at=row.created_at,
        )


def _idea_page(rows: list[Idea], limit: int, order: IdeaOrder) -> Connection[IdeaType]:
    return connection(
        rows, limit, cursor=lambda r: _idea_cursor(r, order), node=IdeaType.from_model
    )


async def _ideas(
    info: CrmInfo,
    tenant_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    order: IdeaOrder,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> Connection[IdeaType]:
    limit = check_first(first)
    by_votes = order is IdeaOrder.VOTES
    async with info.context.session() as session:
        rows = await service.list_ideas(
            session=session,
            tenant_id=tenant_id,
            limit=limit + 1,
            status=status,
            customer_id=customer_id,
            before=None if by_votes else _position(after),
            by_votes=_votes_position(after) if by_votes else None,
            order_by_votes=by_votes,
        )
    return _idea_page(rows, limit, order)


@strawberry.input
class SubmitIdeaInput:
    title: str
    body: str


@strawberry.input
class SetIdeaStatusInput:
    idea_id: strawberry.ID
    status: str = strawberry.field(description="planned, shipped or declined (see README).")
    note: str | None = None


# --- contests --------------------------------------------------------------------------------


async def _winners(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[ContestWinner]]:
    found: Mapping[uuid.UUID, list[ContestWinner]] = await service.contest_winners(
        session=session, tenant_id=tenant_id, contest_ids=list(ids)
    )
    return found


def winners_loader(info: CrmInfo) -> DataLoader[uuid.UUID, list[ContestWinner]]:
    """The request's batch loader of contests' winners."""
    return keyed_loader(info, "contest_winners", _winners, [])


@strawberry.type(name="ContestEntry")
class ContestEntryType:
    """A customer's entry: a text, one of their interactions, or both."""

    id: strawberry.ID
    contest_id: strawberry.ID
    customer_id: strawberry.ID
    text: str | None
    interaction_id: strawberry.ID | None
    votes: int
    created_at: datetime

    @classmethod
    def from_model(cls, row: ContestEntry) -> ContestEntryType:
        return cls(
            id=strawberry.ID(str(row.id)),
            contest_id=strawberry.ID(str(row.contest_id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            text=row.text,
            interaction_id=strawberry.ID(str(row.interaction_id)) if row.interaction_id else None,
            votes=row.vote_count,
            created_at=row.created_at,
        )


@strawberry.type(name="ContestWinner")
class ContestWinnerType:
    rank: int
    entry_id: strawberry.ID
    customer_id: strawberry.ID
    chosen_by: str = strawberry.field(description="'rule' or the staff member who chose.")
    chosen_at: datetime

    @classmethod
    def from_model(cls, row: ContestWinner) -> ContestWinnerType:
        return cls(
            rank=row.rank,
            entry_id=strawberry.ID(str(row.entry_id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            chosen_by=row.chosen_by,
            chosen_at=row.chosen_at,
        )


@strawberry.type(name="Contest")
class ContestType:
    """Entries in one window, votes in another, then winners (one event each)."""

    id: strawberry.ID
    title: str
    description: str | None
    entries_open_at: datetime
    entries_close_at: datetime
    voting_opens_at: datetime
    voting_closes_at: datetime
    winner_count: int
    chosen_by: str = strawberry.field(
        description="rule: most votes (ties to the earliest entry) when voting closes; staff."
    )
    winners_chosen_at: datetime | None
    created_at: datetime

    @strawberry.field(
        description="The entries in the order they came.",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def entries(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ContestEntryType]:
        principal = info.context.principal
        limit = check_first(first)
        async with info.context.session() as session:
            rows = await service.list_entries(
                session=session,
                tenant_id=principal.tenant_id,
                contest_id=uuid.UUID(str(self.id)),
                limit=limit + 1,
                after=_position(after),
            )
        return connection(
            rows,
            limit,
            node=ContestEntryType.from_model,
        )

    @strawberry.field(
        description="The winners by rank, once chosen.",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def winners(self, info: CrmInfo) -> list[ContestWinnerType]:
        rows = await winners_loader(info).load(uuid.UUID(str(self.id)))
        return [ContestWinnerType.from_model(r) for r in rows]

    @classmethod
    def from_model(cls, row: Contest) -> ContestType:
        return cls(
            id=strawberry.ID(str(row.id)),
            title=row.title,
            description=row.description,
            entries_open_at=row.entries_open_at,
            entries_close_at=row.entries_close_at,
            voting_opens_at=row.voting_opens_at,
            voting_closes_at=row.voting_closes_at,
            winner_count=row.winner_count,
            chosen_by=row.chosen_by,
            winners_chosen_at=row.winners_chosen_at,
            created_at=row.created_at,
        )


@strawberry.input
class CreateContestInput:
    title: str
    entries_open_at: datetime
    entries_close_at: datetime
    voting_opens_at: datetime
    voting_closes_at: datetime
    description: str | None = None
    winners: int = strawberry.field(default=1, description="How many winners (1 to 100).")
    chosen_by: str = strawberry.field(
        default="rule", description="rule (chosen when voting closes) or staff."
    )


@strawberry.input
class EnterContestInput:
    contest_id: strawberry.ID
    text: str | None = None
    interaction_id: strawberry.ID | None = strawberry.field(
        default=None, description="One of the customer's own interactions."
    )


# --- content reuse ---------------------------------------------------------------------------


@strawberry.type(name="ContentReuseRequest")
class ContentReuseRequestType:
    """The brand's request to reuse an interaction, and its author's answer."""

    id: strawberry.ID
    interaction_id: strawberry.ID
    channel: str
    customer_id: strawberry.ID | None = strawberry.field(description="The author, once linked.")
    purpose: str
    status: str = strawberry.field(description="requested, granted or denied.")
    answered_via: str | None = strawberry.field(
        description="customer (their own token), reply (#yes/#no) or staff."
    )
    answered_at: datetime | None
    answer_note: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: ContentReuseRequest) -> ContentReuseRequestType:
        return cls(
            id=strawberry.ID(str(row.id)),
            interaction_id=strawberry.ID(str(row.interaction_id)),
            channel=row.channel,
            customer_id=strawberry.ID(str(row.customer_id)) if row.customer_id else None,
            purpose=row.purpose,
            status=row.status,
            answered_via=row.answered_via,
            answered_at=row.answered_at,
            answer_note=row.answer_note,
            created_at=row.created_at,
        )


@strawberry.input
class RequestContentReuseInput:
    interaction_id: strawberry.ID
    purpose: str = strawberry.field(description="How the brand means to reuse it.")


@strawberry.input
class AnswerContentReuseInput:
    request_id: strawberry.ID
    granted: bool
    note: str | None = None


# --- the customer ----------------------------------------------------------------------------


@strawberry.type
class CustomerCommunity:
    """The community's fields of ``Customer`` (the engagement ``Customer`` type includes them)."""

    id: strawberry.ID

    @strawberry.field(
        description="The ideas the customer submitted, newest first.",
        extensions=[needs(Permission.COMMUNITY_READ, customer="self.id")],
    )
    async def ideas(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[IdeaType]:
        customer_id = parse_id(self.id, field="id")
        principal = info.context.principal
        return await _ideas(
            info,
            principal.tenant_id,
            first=first,
            after=after,
            order=IdeaOrder.RECENT,
            customer_id=customer_id,
        )


# --- root fields -----------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's polls, newest first (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def polls(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[PollType]:
        principal = info.context.principal
        limit = check_first(first)
        async with info.context.session() as session:
            rows = await service.list_polls(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                before=_position(after),
            )
        return connection(
            rows,
            limit,
            node=PollType.from_model,
        )

    @strawberry.field(
        description="One poll with its results (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def poll(self, info: CrmInfo, id: strawberry.ID) -> PollType | None:
        principal = info.context.principal
        poll_id = parse_id(id, field="id")
        async with info.context.session() as session:
            row = await service.get_poll(
                session=session, tenant_id=principal.tenant_id, poll_id=poll_id
            )
        return PollType.from_model(row) if row else None

    @strawberry.field(
        description="The tenant's ideas, newest first or most voted first (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def ideas(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        status: str | None = None,
        order_by: IdeaOrder = IdeaOrder.RECENT,
    ) -> Connection[IdeaType]:
        principal = info.context.principal
        return await _ideas(
            info, principal.tenant_id, first=first, after=after, order=order_by, status=status
        )

    @strawberry.field(
        description="One idea (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def idea(self, info: CrmInfo, id: strawberry.ID) -> IdeaType | None:
        principal = info.context.principal
        idea_id = parse_id(id, field="id")
        async with info.context.session() as session:
            row = await service.get_idea(
                session=session, tenant_id=principal.tenant_id, idea_id=idea_id
            )
        return IdeaType.from_model(row) if row else None

    @strawberry.field(
        description="The tenant's contests, newest first (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def contests(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ContestType]:
        principal = info.context.principal
        limit = check_first(first)
        async with info.context.session() as session:
            rows = await service.list_contests(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                before=_position(after),
            )
        return connection(
            rows,
            limit,
            node=ContestType.from_model,
        )

    @strawberry.field(
        description="One contest with its entries and winners (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def contest(self, info: CrmInfo, id: strawberry.ID) -> ContestType | None:
        principal = info.context.principal
        contest_id = parse_id(id, field="id")
        async with info.context.session() as session:
            row = await service.get_contest(
                session=session, tenant_id=principal.tenant_id, contest_id=contest_id
            )
        return ContestType.from_model(row) if row else None

    @strawberry.field(
        description="Requests to reuse fans' content, newest first (community:read; a customer "
        "token sees the requests made to its customer).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def content_reuse_requests(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        status: str | None = None,
    ) -> Connection[ContentReuseRequestType]:
        principal = info.context.principal
        if status is not None and status not in REUSE_STATUSES:
            raise BadUserInput(
                f"status: must be one of {', '.join(REUSE_STATUSES)}", field="status"
            )
        limit = check_first(first)
        async with info.context.session() as session:
            rows = await service.list_reuse_requests(
                session=session,
                tenant_id=principal.tenant_id,
                limit=limit + 1,
                before=_position(after),
                status=status,
                customer_id=principal.customer_id,
            )
        return connection(
            rows,
            limit,
            node=ContentReuseRequestType.from_model,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Ask the community a question (community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def create_poll(self, info: CrmInfo, input: CreatePollInput) -> PollType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            poll, _ = await service.create_poll(
                session=session,
                tenant_id=principal.tenant_id,
                question=input.question,
                options=input.options,
                opens_at=input.opens_at,
                closes_at=input.closes_at,
                created_by=principal.actor,
            )
            await _audit(
                session, principal, "poll.created", "poll", poll.id, {"options": len(input.options)}
            )
        return PollType.from_model(poll)

    @strawberry.mutation(
        description="Stop a poll taking votes now (community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def close_poll(self, info: CrmInfo, poll_id: strawberry.ID) -> PollType:
        principal = info.context.principal
        poll_key = parse_id(poll_id, field="pollId")
        async with info.context.transaction() as session:
            poll = await service.close_poll(
                session=session, tenant_id=principal.tenant_id, poll_id=poll_key
            )
            await _audit(session, principal, "poll.closed", "poll", poll.id)
        return PollType.from_model(poll)

    @strawberry.mutation(
        description="The calling customer's one vote (community:participate, customer token).",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def vote_poll(self, info: CrmInfo, input: VotePollInput) -> PollType:
        principal, customer_id = _participant(info)
        poll_id = parse_id(input.poll_id, field="input.pollId")
        option_id = parse_id(input.option_id, field="input.optionId")
        async with info.context.transaction() as session:
            await service.vote_poll(
                session=session,
                tenant_id=principal.tenant_id,
                poll_id=poll_id,
                option_id=option_id,
                customer_id=customer_id,
            )
            poll = await service.get_poll(
                session=session, tenant_id=principal.tenant_id, poll_id=poll_id
            )
        assert poll is not None
        return PollType.from_model(poll)

    @strawberry.mutation(
        description="Submit an idea (community:participate, customer token); under review.",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def submit_idea(self, info: CrmInfo, input: SubmitIdeaInput) -> IdeaType:
        principal, customer_id = _participant(info)
        async with info.context.transaction() as session:
            idea = await service.submit_idea(
                session=session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                title=input.title,
                body=input.body,
            )
        return IdeaType.from_model(idea)

    @strawberry.mutation(
        description="Vote for someone else's idea, once (community:participate, customer token).",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def vote_idea(self, info: CrmInfo, idea_id: strawberry.ID) -> IdeaType:
        principal, customer_id = _participant(info)
        idea_key = parse_id(idea_id, field="ideaId")
        async with info.context.transaction() as session:
            idea = await service.vote_idea(
                session=session,
                tenant_id=principal.tenant_id,
                idea_id=idea_key,
                customer_id=customer_id,
            )
        return IdeaType.from_model(idea)

    @strawberry.mutation(
        description="Take back a vote for an idea (community:participate, customer token).",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def withdraw_idea_vote(self, info: CrmInfo, idea_id: strawberry.ID) -> IdeaType:
        principal, customer_id = _participant(info)
        idea_key = parse_id(idea_id, field="ideaId")
        async with info.context.transaction() as session:
            idea = await service.withdraw_idea_vote(
                session=session,
                tenant_id=principal.tenant_id,
                idea_id=idea_key,
                customer_id=customer_id,
            )
        return IdeaType.from_model(idea)

    @strawberry.mutation(
        description="Move an idea: under_review -> planned -> shipped, or declined "
        "(community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def set_idea_status(self, info: CrmInfo, input: SetIdeaStatusInput) -> IdeaType:
        principal = info.context.principal
        idea_key = parse_id(input.idea_id, field="input.ideaId")
        async with info.context.transaction() as session:
            idea, previous = await service.set_idea_status(
                session=session,
                tenant_id=principal.tenant_id,
                idea_id=idea_key,
                status=input.status,
                note=input.note,
                actor=principal.actor,
            )
            await _audit(
                session,
                principal,
                "idea.status_changed",
                "idea",
                idea.id,
                {"previous": previous, "status": idea.status},
            )
        return IdeaType.from_model(idea)

    @strawberry.mutation(
        description="Open a contest (community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def create_contest(self, info: CrmInfo, input: CreateContestInput) -> ContestType:
        principal = info.context.principal
        windows = service.ContestWindows(
            entries_open_at=input.entries_open_at,
            entries_close_at=input.entries_close_at,
            voting_opens_at=input.voting_opens_at,
            voting_closes_at=input.voting_closes_at,
        )
        async with info.context.transaction() as session:
            contest = await service.create_contest(
                session=session,
                tenant_id=principal.tenant_id,
                title=input.title,
                description=input.description,
                windows=windows,
                winner_count=input.winners,
                chosen_by=input.chosen_by,
                created_by=principal.actor,
            )
            await _audit(
                session,
                principal,
                "contest.created",
                "contest",
                contest.id,
                {"winners": contest.winner_count, "chosen_by": contest.chosen_by},
            )
        return ContestType.from_model(contest)

    @strawberry.mutation(
        description="Enter a contest, once (community:participate, customer token).",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def enter_contest(self, info: CrmInfo, input: EnterContestInput) -> ContestEntryType:
        principal, customer_id = _participant(info)
        contest_id = parse_id(input.contest_id, field="input.contestId")
        interaction_id = (
            parse_id(input.interaction_id, field="input.interactionId")
            if input.interaction_id is not None
            else None
        )
        async with info.context.transaction() as session:
            entry = await service.enter_contest(
                session=session,
                tenant_id=principal.tenant_id,
                contest_id=contest_id,
                customer_id=customer_id,
                text=input.text,
                interaction_id=interaction_id,
            )
        return ContestEntryType.from_model(entry)

    @strawberry.mutation(
        description="Vote for an entry not your own, one vote per contest "
        "(community:participate, customer token).",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def vote_contest_entry(self, info: CrmInfo, entry_id: strawberry.ID) -> ContestEntryType:
        principal, customer_id = _participant(info)
        entry_key = parse_id(entry_id, field="entryId")
        async with info.context.transaction() as session:
            entry = await service.vote_contest_entry(
                session=session,
                tenant_id=principal.tenant_id,
                entry_id=entry_key,
                customer_id=customer_id,
            )
        return ContestEntryType.from_model(entry)

    @strawberry.mutation(
        description="Choose the winners after voting closed: the given entries in rank order, "
        "or by the rule; a second call changes nothing (community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def choose_contest_winners(
        self,
        info: CrmInfo,
        contest_id: strawberry.ID,
        entry_ids: list[strawberry.ID] | None = None,
    ) -> list[ContestWinnerType]:
        principal = info.context.principal
        contest_key = parse_id(contest_id, field="contestId")
        chosen = (
            [parse_id(i, field="entryIds") for i in entry_ids] if entry_ids is not None else None
        )
        async with info.context.transaction() as session:
            winners = await service.choose_winners(
                session=session,
                tenant_id=principal.tenant_id,
                contest_id=contest_key,
                entry_ids=chosen,
                chosen_by="rule" if chosen is None else principal.actor,
            )
            await _audit(
                session,
                principal,
                "contest.winners_chosen",
                "contest",
                contest_key,
                {"winners": len(winners), "by_rule": chosen is None},
            )
        return [ContestWinnerType.from_model(w) for w in winners]

    @strawberry.mutation(
        description="Ask an interaction's author to let the brand reuse it (community:manage).",
        extensions=[needs(Permission.COMMUNITY_MANAGE, own=True)],
    )
    async def request_content_reuse(
        self, info: CrmInfo, input: RequestContentReuseInput
    ) -> ContentReuseRequestType:
        principal = info.context.principal
        interaction_id = parse_id(input.interaction_id, field="input.interactionId")
        async with info.context.transaction() as session:
            request = await service.request_content_reuse(
                session=session,
                tenant_id=principal.tenant_id,
                interaction_id=interaction_id,
                purpose=input.purpose,
                requested_by=principal.actor,
            )
            await _audit(
                session, principal, "content_reuse.requested", "content_reuse_request", request.id
            )
        return ContentReuseRequestType.from_model(request)

    @strawberry.mutation(
        description="The author's answer: a customer answering with their own token "
        "(community:participate), or staff recording an answer given elsewhere "
        "(community:manage; granting needs the author's content_reuse consent).",
        extensions=[
            needs(
                Permission.COMMUNITY_MANAGE,
                customers=Permission.COMMUNITY_PARTICIPATE,
                own=True,
            )
        ],
    )
    async def answer_content_reuse(
        self, info: CrmInfo, input: AnswerContentReuseInput
    ) -> ContentReuseRequestType:
        principal = info.context.principal
        is_customer = principal.kind == "customer"
        request_id = parse_id(input.request_id, field="input.requestId")
        async with info.context.transaction() as session:
            request = await service.answer_content_reuse(
                session=session,
                tenant_id=principal.tenant_id,
                request_id=request_id,
                granted=input.granted,
                via="customer" if is_customer else "staff",
                customer_id=principal.customer_id,
                note=input.note,
            )
            await _audit(
                session,
                principal,
                "content_reuse.answered",
                "content_reuse_request",
                request.id,
                {"status": request.status},
            )
        return ContentReuseRequestType.from_model(request)
