"""Influence in the graph: ``Customer.influence``, ``advocates``, ``detractors`` and
``influenceComputation`` (interactions:read), ``recomputeInfluence`` (listening:manage)."""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.audit import record_staff_action
from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput, Conflict
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import Connection, check_first, connection
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.influence import service
from engagement.influence.models import InfluenceRun, InfluenceScore
from engagement.settings import EngagementSettings


@strawberry.enum(name="InfluenceUnavailable")
class Unavailable(enum.Enum):
    PROFILING_NOT_ALLOWED = "profiling_not_allowed"
    NOT_COMPUTED = "not_computed"


@strawberry.type(name="Influence")
class InfluenceType:
    """A customer's influence, or why there is none (every other field is then null)."""

    unavailable: Unavailable | None = strawberry.field(
        description="Why there is no score: the customer does not allow profiling, or it was "
        "not computed yet."
    )
    reach: int | None = strawberry.field(description="Followers over their linked profiles.")
    engagement_received: int | None = strawberry.field(
        description="Replies and comments to their items, likes and shares."
    )
    amplification: int | None = strawberry.field(description="Shares of their items.")
    page_rank: float | None = strawberry.field(
        description="Their profiles' PageRank in the tenant's mention/reply/share graph (all "
        "authors' sum to 1)."
    )
    score: float | None = strawberry.field(description="0..1, relative to the tenant.")
    influencer: bool | None
    advocate: bool | None = strawberry.field(description="Influential and positive.")
    detractor: bool | None = strawberry.field(description="Influential and negative.")
    mean_sentiment: float | None
    computed_at: datetime | None

    @classmethod
    def none(cls, reason: Unavailable) -> InfluenceType:
        return cls(
            unavailable=reason,
            reach=None,
            engagement_received=None,
            amplification=None,
            page_rank=None,
            score=None,
            influencer=None,
            advocate=None,
            detractor=None,
            mean_sentiment=None,
            computed_at=None,
        )

    @classmethod
    def from_model(cls, row: InfluenceScore) -> InfluenceType:
        return cls(
            unavailable=None,
            reach=row.reach,
            engagement_received=row.engagement_received,
            amplification=row.amplification,
            page_rank=row.page_rank,
            score=row.score,
            influencer=row.influencer,
            advocate=row.advocate,
            detractor=row.detractor,
            mean_sentiment=row.mean_sentiment,
            computed_at=row.computed_at,
        )


NOT_ALLOWED = InfluenceType.none(Unavailable.PROFILING_NOT_ALLOWED)


@strawberry.type(name="Influencer")
class InfluencerType:
    """An advocate or detractor."""

    customer_id: strawberry.ID
    influence: InfluenceType


@strawberry.type(name="InfluenceComputation")
class InfluenceComputationType:
    """The tenant's last influence computation."""

    computed_at: datetime
    profiles: int = strawberry.field(description="Authors in the graph.")
    edges: int = strawberry.field(description="Distinct author-to-author edges.")

    @classmethod
    def from_model(cls, row: InfluenceRun) -> InfluenceComputationType:
        return cls(computed_at=row.computed_at, profiles=row.profiles, edges=row.edges)


async def _influence(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, InfluenceType]:
    allowed, rows = await service.standing_of(session, tenant_id, list(ids))
    return {
        c: InfluenceType.from_model(row)
        if (row := rows.get(c)) is not None
        else InfluenceType.none(Unavailable.NOT_COMPUTED)
        for c in allowed
    }


def influence_loader(info: CrmInfo) -> DataLoader[uuid.UUID, InfluenceType]:
    """The request's batch loader of customers' influence (consent checked now)."""
    return keyed_loader(info, "customer_influence", _influence, NOT_ALLOWED)


def _cursor(row: InfluenceScore) -> str:
    return base64.urlsafe_b64encode(f"{row.score!r}|{row.customer_id}".encode()).decode()


def _position(after: str | None) -> tuple[float, uuid.UUID] | None:
    if after is None:
        return None
    try:
        value, id_ = base64.urlsafe_b64decode(after.encode()).decode().split("|")
        return float(value), uuid.UUID(id_)
    except (ValueError, UnicodeDecodeError):
        raise BadUserInput("after: not a valid cursor", field="after") from None


def _node(row: InfluenceScore) -> InfluencerType:
    return InfluencerType(
        customer_id=strawberry.ID(str(row.customer_id)), influence=InfluenceType.from_model(row)
    )


async def _ranked(
    info: CrmInfo, flag: str, first: int, after: str | None
) -> Connection[InfluencerType]:
    principal = info.context.principal
    limit = check_first(first)
    position = _position(after)
    async with info.context.session() as session:
        rows = await service.ranked(
            session=session,
            tenant_id=principal.tenant_id,
            flag=flag,
            limit=limit + 1,
            after=position,
        )
    return connection(rows, limit, cursor=_cursor, node=_node)


@strawberry.type
class CustomerInfluenceFields:
    """The influence field of engagement's ``Customer``."""

    id: strawberry.ID

    @strawberry.field(
        description="The customer's influence; without their profiling consent there is none "
        "and `unavailable` says so (interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ, customer="self.id")],
    )
    async def influence(self, info: CrmInfo) -> InfluenceType:
        customer_id = parse_id(self.id, field="id")
        return await influence_loader(info).load(customer_id)


@strawberry.type
class Query:
    @strawberry.field(
        description="Influential customers positive towards the brand, highest score first "
        "(interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ)],
    )
    async def advocates(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[InfluencerType]:
        return await _ranked(info, "advocate", first, after)

    @strawberry.field(
        description="Influential customers negative towards the brand, highest score first "
        "(interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ)],
    )
    async def detractors(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[InfluencerType]:
        return await _ranked(info, "detractor", first, after)

    @strawberry.field(
        description="When the tenant's influence was last computed; null before the first "
        "time (interactions:read).",
        extensions=[needs(Permission.INTERACTIONS_READ)],
    )
    async def influence_computation(self, info: CrmInfo) -> InfluenceComputationType | None:
        principal = info.context.principal
        async with info.context.session() as session:
            row = await service.last_run(session=session, tenant_id=principal.tenant_id)
        return None if row is None else InfluenceComputationType.from_model(row)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Recompute the tenant's influence now (listening:manage); changes of "
        "standing are announced.",
        extensions=[needs(Permission.LISTENING_MANAGE)],
    )
    async def recompute_influence(self, info: CrmInfo) -> InfluenceComputationType:
        principal = info.context.principal
        settings = EngagementSettings()
        async with info.context.transaction() as session:
            summary = await service.recompute(
                session=session,
                tenant_id=principal.tenant_id,
                rules=service.rules_of(settings),
                damping=settings.influence_damping,
                sentiment_days=settings.influence_sentiment_days,
            )
            if summary is None:  # only when not waiting for the lock
                raise Conflict("influence: a recomputation is already running")
            if principal.kind == "staff":
                await record_staff_action(
                    session=session,
                    principal=principal,
                    action="influence.recomputed",
                    record_type="influence",
                    record_id=principal.tenant_id,
                    details={"scored": summary.scored, "announced": summary.announced},
                )
        return InfluenceComputationType(
            computed_at=summary.computed_at, profiles=summary.profiles, edges=summary.edges
        )
