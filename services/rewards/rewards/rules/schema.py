"""Rules in the rewards subgraph: defining them, their versions and payouts, dry runs."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared import audit
from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput, NotFound
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import Connection
from crm_shared.resolvers import needs, one, page
from crm_shared.validation import parse_id
from rewards.rules import service
from rewards.rules.conditions import Period, RewardKind, RuleDefinition, Trigger
from rewards.rules.models import Rule, RulePayout, RuleVersion

RuleRewardKind = strawberry.enum(RewardKind, name="RuleRewardKind")
CapPeriod = strawberry.enum(Period, name="CapPeriod")


def _id(value: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(str(value))


@strawberry.type(name="RuleConditions")
class RuleConditionsType:
    """All set conditions must hold; a list means "any of"."""

    channels: list[str] | None
    interaction_kinds: list[str] | None
    sentiment_min: float | None
    sentiment_max: float | None
    sentiment_labels: list[str] | None
    segments: list[str] | None
    tier_ids: list[strawberry.ID] | None
    consent_purposes: list[str] | None = strawberry.field(
        description="Every purpose listed must be granted by the customer."
    )
    first_time: bool = strawberry.field(
        description="Only the customer's first event of this trigger."
    )
    amount_min_cents: int | None
    amount_max_cents: int | None
    currencies: list[str] | None
    idea_statuses: list[str] | None
    max_rank: int | None


@strawberry.type(name="RuleReward")
class RuleRewardType:
    kind: RewardKind
    points: int | None = strawberry.field(
        description="Points (POINTS) or points per whole currency unit (POINTS_PER_UNIT)."
    )
    offer_id: strawberry.ID | None
    tier_multiplier: bool = strawberry.field(
        description="Points are multiplied by the customer's tier multiplier."
    )


@strawberry.type(name="RuleCap")
class RuleCapType:
    period: Period
    count: int = strawberry.field(description="Payouts per customer per period, at most.")


@strawberry.type(name="RuleVersion")
class RuleVersionType:
    """One immutable definition of a rule; payouts name the version that made them."""

    version: int
    name: str
    trigger: str = strawberry.field(description="The event type the rule triggers on.")
    conditions: RuleConditionsType
    reward: RuleRewardType
    caps: list[RuleCapType]
    budget_points: int | None
    budget_count: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    priority: int
    stop_after: bool = strawberry.field(description="No lower-priority rule pays after this one.")
    created_by: str
    created_at: datetime

    @classmethod
    def from_model(cls, version: RuleVersion) -> RuleVersionType:
        d = service.definition_of(version)
        c = d.conditions
        values = {f.name: getattr(c, f.name) for f in dataclasses.fields(RuleConditionsType)}
        values["tier_ids"] = [_id(t) for t in c.tier_ids] if c.tier_ids is not None else None
        return cls(
            version=version.version,
            name=d.name,
            trigger=d.trigger.value,
            conditions=RuleConditionsType(**values),
            reward=RuleRewardType(
                kind=d.reward.kind,
                points=d.reward.points,
                offer_id=_id(d.reward.offer_id) if d.reward.offer_id else None,
                tier_multiplier=d.reward.tier_multiplier,
            ),
            caps=[RuleCapType(period=cap.period, count=cap.count) for cap in d.caps],
            budget_points=d.budget_points,
            budget_count=d.budget_count,
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            priority=d.priority,
            stop_after=d.stop_after,
            created_by=version.created_by,
            created_at=version.created_at,
        )


async def _versions(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, list[RuleVersion]]:
    return await service.versions(session, tenant_id=tenant_id, rule_ids=list(ids))


def _versions_loader(info: CrmInfo) -> DataLoader[uuid.UUID, list[RuleVersion]]:
    empty: list[RuleVersion] = []
    return keyed_loader(info, "rule_versions", _versions, empty)


async def _paid(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, tuple[int, int]]:
    return await service.paid_totals(session, tenant_id=tenant_id, rule_ids=list(ids))


def _paid_loader(info: CrmInfo) -> DataLoader[uuid.UUID, tuple[int, int]]:
    return keyed_loader(info, "rule_paid", _paid, (0, 0))


@strawberry.type(name="Rule")
class RuleType:
    """A rule of the tenant: what it pays is its current version."""

    id: strawberry.ID
    version: int = strawberry.field(description="The current version.")
    enabled: bool
    default: bool = strawberry.field(description="Made by rewards (the sign-up rule).")
    created_at: datetime
    updated_at: datetime
    rule_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, rule: Rule) -> RuleType:
        return cls(
            id=_id(rule.id),
            version=rule.version,
            enabled=rule.enabled,
            default=rule.default_key is not None,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
            rule_id=rule.id,
        )

    @strawberry.field(
        description="Points paid, across versions.", extensions=[needs(Permission.REWARDS_READ)]
    )
    async def paid_points(self, info: CrmInfo) -> int:
        return (await _paid_loader(info).load(self.rule_id))[0]

    @strawberry.field(
        description="Payouts made, across versions.", extensions=[needs(Permission.REWARDS_READ)]
    )
    async def paid_count(self, info: CrmInfo) -> int:
        return (await _paid_loader(info).load(self.rule_id))[1]

    @strawberry.field(
        description="Every version, newest first.", extensions=[needs(Permission.REWARDS_READ)]
    )
    async def versions(self, info: CrmInfo) -> list[RuleVersionType]:
        found = await _versions_loader(info).load(self.rule_id)
        return [RuleVersionType.from_model(v) for v in found]

    @strawberry.field(
        description="The current version.", extensions=[needs(Permission.REWARDS_READ)]
    )
    async def current(self, info: CrmInfo) -> RuleVersionType:
        found = await _versions_loader(info).load(self.rule_id)
        return RuleVersionType.from_model(next(v for v in found if v.version == self.version))


@strawberry.type(name="RulePayout")
class RulePayoutType:
    """What one rule version paid for one event."""

    id: strawberry.ID
    rule_id: strawberry.ID
    version: int
    event_id: strawberry.ID
    customer_id: strawberry.ID
    points: int
    entry_id: strawberry.ID | None
    offer_id: strawberry.ID | None
    grant_id: strawberry.ID | None
    occurred_at: datetime
    created_at: datetime

    @classmethod
    def from_model(cls, p: RulePayout) -> RulePayoutType:
        return cls(
            id=_id(p.id),
            rule_id=_id(p.rule_id),
            version=p.version,
            event_id=_id(p.event_id),
            customer_id=_id(p.customer_id),
            points=p.points,
            entry_id=_id(p.entry_id) if p.entry_id else None,
            offer_id=_id(p.offer_id) if p.offer_id else None,
            grant_id=_id(p.grant_id) if p.grant_id else None,
            occurred_at=p.occurred_at,
            created_at=p.created_at,
        )


@strawberry.type
class DryRunCustomer:
    customer_id: strawberry.ID
    payouts: int
    points: int


@strawberry.type
class DryRunResult:
    """What a rule would have paid over past events, alone (other rules' stops not applied)."""

    events: int = strawberry.field(description="Stored events of the trigger in the range.")
    matched: int
    payouts: int
    points: int
    coupons: int
    capped: int = strawberry.field(description="Matched but over a per-customer cap.")
    over_budget: int
    truncated: bool = strawberry.field(description="Only the first 200000 events were read.")
    top_customers: list[DryRunCustomer]

    @classmethod
    def from_result(cls, r: service.DryRun) -> DryRunResult:
        return cls(
            events=r.events,
            matched=r.matched,
            payouts=r.payouts,
            points=r.points,
            coupons=r.coupons,
            capped=r.capped,
            over_budget=r.over_budget,
            truncated=r.truncated,
            top_customers=[
                DryRunCustomer(customer_id=_id(t.customer_id), payouts=t.payouts, points=t.points)
                for t in r.top_customers
            ],
        )


@strawberry.input
class RuleConditionsInput:
    channels: list[str] | None = None
    interaction_kinds: list[str] | None = None
    sentiment_min: float | None = None
    sentiment_max: float | None = None
    sentiment_labels: list[str] | None = None
    segments: list[str] | None = None
    tier_ids: list[strawberry.ID] | None = None
    consent_purposes: list[str] | None = None
    first_time: bool = False
    amount_min_cents: int | None = None
    amount_max_cents: int | None = None
    currencies: list[str] | None = None
    idea_statuses: list[str] | None = None
    max_rank: int | None = None


@strawberry.input
class RuleRewardInput:
    kind: RewardKind
    points: int | None = None
    offer_id: strawberry.ID | None = None
    tier_multiplier: bool = True


@strawberry.input
class RuleCapInput:
    period: Period
    count: int


@strawberry.input
class RuleInput:
    """A rule's whole definition (updateRule replaces it: a new version)."""

    name: str
    trigger: str = strawberry.field(
        description="An event type: " + ", ".join(t.value for t in Trigger) + "."
    )
    reward: RuleRewardInput
    conditions: RuleConditionsInput | None = None
    caps: list[RuleCapInput] | None = None
    budget_points: int | None = None
    budget_count: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: int = 0
    stop_after: bool = False


def _plain(value: Any) -> Any:
    """Input objects as dicts without unset (None) fields, so the model's defaults apply."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _definition(input: RuleInput, *, prefix: str = "input") -> RuleDefinition:
    data = _plain(input)
    if data["trigger"] not in {t.value for t in Trigger}:
        raise BadUserInput(
            f"{prefix}.trigger: not an event type rules can trigger on", field=f"{prefix}.trigger"
        )
    return service.parse_definition(data, prefix=prefix)


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's rules, oldest first (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def rules(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[RuleType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_rules(
                session, tenant_id=tenant_id, limit=limit, after=position
            ),
            node=RuleType.from_model,
        )

    @strawberry.field(
        description="One rule with its versions, or null (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def rule(self, info: CrmInfo, id: strawberry.ID) -> RuleType | None:
        return await one(
            info,
            id,
            lambda session, tenant_id, rule_id: service.get_rule(
                session, tenant_id=tenant_id, rule_id=rule_id
            ),
            RuleType.from_model,
        )

    @strawberry.field(
        description="A rule's payouts, newest first (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def rule_payouts(
        self, info: CrmInfo, rule_id: strawberry.ID, first: int = 20, after: str | None = None
    ) -> Connection[RulePayoutType]:
        rule = parse_id(rule_id, field="ruleId")
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.payouts(
                session, tenant_id=tenant_id, rule_id=rule, limit=limit, before=position
            ),
            node=RulePayoutType.from_model,
        )

    @strawberry.field(
        description="What a draft (`input`) or an existing rule (`ruleId`, its current "
        "version) would have paid for the events in [from, to); pays nothing (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def dry_run_rule(
        self,
        info: CrmInfo,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        input: RuleInput | None = None,
        rule_id: strawberry.ID | None = None,
    ) -> DryRunResult:
        principal = info.context.principal
        if (input is None) == (rule_id is None):
            raise BadUserInput("input: give either input or ruleId", field="input")
        async with info.context.session() as session:
            if input is not None:
                definition = _definition(input)
            else:
                assert rule_id is not None
                definition = await _current_definition(
                    session, principal.tenant_id, parse_id(rule_id, field="ruleId")
                )
            result = await service.dry_run(
                session,
                tenant_id=principal.tenant_id,
                definition=definition,
                since=from_,
                until=to,
            )
        return DryRunResult.from_result(result)


async def _current_definition(
    session: AsyncSession, tenant_id: uuid.UUID, rule_id: uuid.UUID
) -> RuleDefinition:
    rule = await service.get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    if rule is None:
        raise NotFound("ruleId: no such rule", field="ruleId")
    found = await service.versions(session, tenant_id=tenant_id, rule_ids=[rule_id])
    return service.definition_of(next(v for v in found[rule_id] if v.version == rule.version))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="A new rule, enabled (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def create_rule(self, info: CrmInfo, input: RuleInput) -> RuleType:
        principal = info.context.principal
        definition = _definition(input)
        async with info.context.transaction() as session:
            rule, version = await service.create_rule(
                session=session,
                tenant_id=principal.tenant_id,
                definition=definition,
                actor=principal.actor,
            )
            await _record(session, info, "rule.created", rule, version.version)
        return RuleType.from_model(rule)

    @strawberry.mutation(
        description="Replace a rule's definition: a new version; past payouts stay "
        "(rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def update_rule(self, info: CrmInfo, id: strawberry.ID, input: RuleInput) -> RuleType:
        principal = info.context.principal
        rule_id = parse_id(id, field="id")
        definition = _definition(input)
        async with info.context.transaction() as session:
            rule, version = await service.update_rule(
                session=session,
                tenant_id=principal.tenant_id,
                rule_id=rule_id,
                definition=definition,
                actor=principal.actor,
            )
            await _record(session, info, "rule.updated", rule, version.version)
        return RuleType.from_model(rule)

    @strawberry.mutation(
        description="Stop a rule paying (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def disable_rule(self, info: CrmInfo, id: strawberry.ID) -> RuleType:
        principal = info.context.principal
        rule_id = parse_id(id, field="id")
        async with info.context.transaction() as session:
            rule = await service.disable_rule(
                session=session, tenant_id=principal.tenant_id, rule_id=rule_id
            )
            await _record(session, info, "rule.disabled", rule, rule.version)
        return RuleType.from_model(rule)


async def _record(
    session: AsyncSession, info: CrmInfo, action: str, rule: Rule, version: int
) -> None:
    await audit.record_staff_action(
        session=session,
        principal=info.context.principal,
        action=action,
        record_type="rule",
        record_id=rule.id,
        details={"version": version},
    )
