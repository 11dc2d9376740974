"""Contests in the graph: entries in a window, votes in another, winners chosen once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import (
    Connection,
)
from crm_shared.resolvers import needs, one, page
from crm_shared.validation import parse_id
from engagement.community.access import audit, participant
from engagement.community.contests import service
from engagement.community.models import (
    Contest,
    ContestEntry,
    ContestWinner,
)


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
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_entries(
                session=session,
                tenant_id=tenant_id,
                contest_id=uuid.UUID(str(self.id)),
                limit=limit,
                after=position,
            ),
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


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's contests, newest first (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def contests(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[ContestType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_contests(
                session=session, tenant_id=tenant_id, limit=limit, before=position
            ),
            node=ContestType.from_model,
        )

    @strawberry.field(
        description="One contest with its entries and winners (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def contest(self, info: CrmInfo, id: strawberry.ID) -> ContestType | None:
        return await one(
            info,
            id,
            lambda session, tenant_id, contest_id: service.get_contest(
                session=session, tenant_id=tenant_id, contest_id=contest_id
            ),
            ContestType.from_model,
        )


@strawberry.type
class Mutation:
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
            await audit(
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
        principal, customer_id = participant(info)
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
        principal, customer_id = participant(info)
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
            await audit(
                session,
                principal,
                "contest.winners_chosen",
                "contest",
                contest_key,
                {"winners": len(winners), "by_rule": chosen is None},
            )
        return [ContestWinnerType.from_model(w) for w in winners]
