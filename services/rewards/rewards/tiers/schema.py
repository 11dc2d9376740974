"""Tiers in the rewards subgraph: definitions, and the tier on the customer graph."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared import audit
from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, validated
from rewards.tiers import service
from rewards.tiers.models import Tier, TierBasis

strawberry.enum(TierBasis, name="TierBasis")


@strawberry.type(name="Tier")
class TierType:
    """A level of the tenant's programme."""

    id: strawberry.ID
    name: str
    level: int = strawberry.field(description="Higher levels rank above lower ones.")
    basis: TierBasis
    threshold: int = strawberry.field(description="Points earned or interactions to reach.")
    window_days: int = strawberry.field(description="The rolling window the basis counts.")
    multiplier: float = strawberry.field(description="Rules multiply points by this.")
    benefits: list[str]

    @classmethod
    def from_model(cls, tier: Tier) -> TierType:
        return cls(
            id=strawberry.ID(str(tier.id)),
            name=tier.name,
            level=tier.level,
            basis=TierBasis(tier.basis),
            threshold=tier.threshold,
            window_days=tier.window_days,
            multiplier=float(tier.multiplier),
            benefits=list(tier.benefits),
        )


@strawberry.type
class TierProgress:
    """How far the customer is towards the next tier, on its basis and window."""

    next_tier: TierType
    current: int
    threshold: int


@strawberry.type
class CustomerTierStanding:
    """The tier a customer is in; null name: none reached yet."""

    name: str | None
    tier: TierType | None
    since: datetime | None
    progress: TierProgress | None = strawberry.field(description="Null at the top tier.")


async def _standings(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, service.Standing | None]:
    found: Mapping[uuid.UUID, service.Standing | None] = await service.standings(
        session, tenant_id=tenant_id, customer_ids=list(ids)
    )
    return found


@strawberry.type
class CustomerTierFields:
    """``Customer.tier`` (composed into rewards' Customer type)."""

    id: strawberry.ID

    @strawberry.field(
        description="The customer's tier; null when the tenant has no tiers.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def tier(self, info: CrmInfo) -> CustomerTierStanding | None:
        customer_id = parse_id(self.id, field="id")
        standing = await keyed_loader(info, "tier_standings", _standings, None).load(customer_id)
        if standing is None:
            return None
        progress = None
        if standing.next_tier is not None:
            progress = TierProgress(
                next_tier=TierType.from_model(standing.next_tier),
                current=standing.progress or 0,
                threshold=standing.next_tier.threshold,
            )
        return CustomerTierStanding(
            name=standing.tier.name if standing.tier else None,
            tier=TierType.from_model(standing.tier) if standing.tier else None,
            since=standing.since,
            progress=progress,
        )


@strawberry.input
class TierInput:
    name: str
    level: int = strawberry.field(description="1..100; unique among the tenant's tiers.")
    basis: TierBasis
    threshold: int
    window_days: int = 365
    multiplier: float = 1.0
    benefits: list[str] = strawberry.field(default_factory=list)


def _definition(input: TierInput) -> service.TierDefinition:
    return validated(
        service.TierDefinition,
        {
            "name": input.name,
            "level": input.level,
            "basis": input.basis,
            "threshold": input.threshold,
            "window_days": input.window_days,
            "multiplier": Decimal(str(input.multiplier)),
            "benefits": input.benefits,
        },
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's tiers, lowest level first (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def tiers(self, info: CrmInfo) -> list[TierType]:
        principal = info.context.principal
        async with info.context.session() as session:
            found = await service.list_tiers(session, tenant_id=principal.tenant_id)
        return [TierType.from_model(t) for t in found]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="A new tier (rewards:manage).", extensions=[needs(Permission.REWARDS_MANAGE)]
    )
    async def define_tier(self, info: CrmInfo, input: TierInput) -> TierType:
        principal = info.context.principal
        definition = _definition(input)
        async with info.context.transaction() as session:
            tier = await service.define_tier(
                session=session, tenant_id=principal.tenant_id, definition=definition
            )
            await _record(session, info, "tier.defined", tier)
        return TierType.from_model(tier)

    @strawberry.mutation(
        description="Change a tier; customers move at their next recomputation (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def update_tier(self, info: CrmInfo, id: strawberry.ID, input: TierInput) -> TierType:
        principal = info.context.principal
        tier_id = parse_id(id, field="id")
        definition = _definition(input)
        async with info.context.transaction() as session:
            tier = await service.update_tier(
                session=session,
                tenant_id=principal.tenant_id,
                tier_id=tier_id,
                definition=definition,
            )
            await _record(session, info, "tier.updated", tier)
        return TierType.from_model(tier)

    @strawberry.mutation(
        description="Stop using a tier (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def remove_tier(self, info: CrmInfo, id: strawberry.ID) -> TierType:
        principal = info.context.principal
        tier_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            tier = await service.remove_tier(
                session=session, tenant_id=principal.tenant_id, tier_id=tier_id
            )
            await _record(session, info, "tier.removed", tier)
        return TierType.from_model(tier)


async def _record(session: AsyncSession, info: CrmInfo, action: str, tier: Tier) -> None:
    await audit.record_staff_action(
        session=session,
        principal=info.context.principal,
        action=action,
        record_type="tier",
        record_id=tier.id,
        details={"level": tier.level, "threshold": tier.threshold},
    )
