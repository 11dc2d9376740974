"""Ideas in the graph: customers submit and vote; staff move them under_review ->
planned -> shipped (or declined)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import (
    Connection,
    check_first,
    connection,
    encode_cursor,
)
from crm_shared.resolvers import needs, one
from crm_shared.validation import parse_id
from engagement.community.access import audit, participant, position
from engagement.community.ideas import service
from engagement.community.models import (
    Idea,
)
from engagement.community.service import VotesPosition


@strawberry.enum(name="IdeaOrder")
class IdeaOrder(Enum):
    RECENT = "recent"
    VOTES = "votes"


def _idea_cursor(row: Idea, order: IdeaOrder) -> str:
    if order is IdeaOrder.RECENT:
        return encode_cursor(row.created_at, row.id)
    raw = f"{row.vote_count}|{row.created_at.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _votes_position(after: str | None) -> VotesPosition | None:
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


async def idea_page(
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
            before=None if by_votes else position(after),
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


@strawberry.type
class Query:
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
        return await idea_page(
            info, principal.tenant_id, first=first, after=after, order=order_by, status=status
        )

    @strawberry.field(
        description="One idea (community:read).",
        extensions=[needs(Permission.COMMUNITY_READ, own=True)],
    )
    async def idea(self, info: CrmInfo, id: strawberry.ID) -> IdeaType | None:
        return await one(
            info,
            id,
            lambda session, tenant_id, idea_id: service.get_idea(
                session=session, tenant_id=tenant_id, idea_id=idea_id
            ),
            IdeaType.from_model,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Submit an idea (community:participate, customer token); under review.",
        extensions=[needs(Permission.COMMUNITY_PARTICIPATE, own=True)],
    )
    async def submit_idea(self, info: CrmInfo, input: SubmitIdeaInput) -> IdeaType:
        principal, customer_id = participant(info)
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
        principal, customer_id = participant(info)
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
        principal, customer_id = participant(info)
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
            await audit(
                session,
                principal,
                "idea.status_changed",
                "idea",
                idea.id,
                {"previous": previous, "status": idea.status},
            )
        return IdeaType.from_model(idea)
