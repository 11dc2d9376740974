"""Polls in the graph: staff ask, customers vote once, results by option."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.db import utcnow
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import (
    Connection,
)
from crm_shared.resolvers import needs, one, page
from crm_shared.validation import parse_id
from engagement.community.access import audit, participant
from engagement.community.models import (
    Poll,
)
from engagement.community.polls import service


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


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's polls, newest first (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def polls(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[PollType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_polls(
                session=session, tenant_id=tenant_id, limit=limit, before=position
            ),
            node=PollType.from_model,
        )

    @strawberry.field(
        description="One poll with its results (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def poll(self, info: CrmInfo, id: strawberry.ID) -> PollType | None:
        return await one(
            info,
            id,
            lambda session, tenant_id, poll_id: service.get_poll(
                session=session, tenant_id=tenant_id, poll_id=poll_id
            ),
            PollType.from_model,
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
            await audit(
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
            await audit(session, principal, "poll.closed", "poll", poll.id)
        return PollType.from_model(poll)

    @strawberry.mutation(
        description="The calling customer's one vote (community:participate, customer token).",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def vote_poll(self, info: CrmInfo, input: VotePollInput) -> PollType:
        principal, customer_id = participant(info)
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
