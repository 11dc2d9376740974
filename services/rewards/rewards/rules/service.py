"""Rules: defining them (versioned), paying them for events, dry runs, refunds.

Payouts run in the transaction of the event's handler, after the customer's account row is
locked (``accounts.service.open_account``): a customer's payouts happen one after another, so
per-customer caps hold; the rule's budget is taken with a conditional ``UPDATE`` (a row lock),
so it holds across customers. Each (event, rule) pays at most once (``rule_payouts_once``, and
the ledger key ``rule:<rule id>:event:<event id>``). Points move only through the ledger.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import delete, func, or_, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.privacy import ProfileRef
from rewards.accounts import service as ledger
from rewards.offers import service as offers
from rewards.offers.events import CouponGranted
from rewards.rules.conditions import (
    Cap,
    Facts,
    FieldProblem,
    Period,
    Reward,
    RewardKind,
    RuleDefinition,
    Trigger,
    cap_allows,
    matches,
    period_bounds,
    reward_points,
)
from rewards.rules.models import (
    CustomerSegment,
    PayoutRefund,
    PendingTrigger,
    Rule,
    RulePayout,
    RuleTenant,
    RuleVersion,
    TriggerEvent,
)
from rewards.tiers import service as tiers

SIGNUP_KEY = "signup"
GRANTS = uuid.UUID("6f1d3c2a-5b7e-4c1f-9a8d-2e4b6c8d0f12")  # namespace of coupon grant ids
MAX_DRY_RUN_DAYS = 366
MAX_DRY_RUN_EVENTS = 200_000
TOP_CUSTOMERS = 10
RULE_ACTOR = "system:rules"


# Definitions ------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def parse_definition(data: dict[str, Any], *, prefix: str = "input") -> RuleDefinition:
    """A rule definition from input; BAD_USER_INPUT naming the first wrong field otherwise."""
    try:
        definition = RuleDefinition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(_camel(str(part)) for part in (prefix, *first["loc"]))
        problem = first.get("ctx", {}).get("error")
        if isinstance(problem, FieldProblem):
            path = f"{path}.{problem.field}"
            raise BadUserInput(f"{path}: {problem.message}", field=path) from None
        raise BadUserInput(f"{path}: {first['msg']}", field=path) from None
    for name, message in definition.errors_of_facts():
        path = f"{prefix}.conditions.{_camel(name)}"
        raise BadUserInput(f"{path}: {message}", field=path)
    return definition


def definition_of(version: RuleVersion) -> RuleDefinition:
    """The stored definition of a version."""
    return RuleDefinition.model_validate(version.definition)


async def _add_version(
    session: AsyncSession, rule: Rule, definition: RuleDefinition, actor: str
) -> RuleVersion:
    version = RuleVersion(
        rule_id=rule.id,
        version=rule.version,
        tenant_id=rule.tenant_id,
        definition=definition.as_json(),
        created_by=actor,
    )
    session.add(version)
    await session.flush()
    return version


async def create_rule(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    definition: RuleDefinition,
    actor: str,
    default_key: str | None = None,
) -> tuple[Rule, RuleVersion]:
    """A new rule (version 1), enabled."""
    await _require_reward_offer(session, tenant_id, definition)
    rule = Rule(
        tenant_id=tenant_id,
        trigger=definition.trigger.value,
        priority=definition.priority,
        default_key=default_key,
    )
    session.add(rule)
    await session.flush()
    return rule, await _add_version(session, rule, definition, actor)


async def _require_reward_offer(
    session: AsyncSession, tenant_id: uuid.UUID, definition: RuleDefinition
) -> None:
    """A coupon reward names one of the tenant's own offers."""
    await offers.require_offers(
        session=session,
        tenant_id=tenant_id,
        offer_ids={"input.reward.offerId": definition.reward.offer_id},
    )


async def _lock_rule(session: AsyncSession, tenant_id: uuid.UUID, rule_id: uuid.UUID) -> Rule:
    rule = (
        await session.exec(
            select(Rule)
            .where(Rule.tenant_id == tenant_id, Rule.id == rule_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if rule is None:
        raise NotFound("id: no such rule", field="id")
    return rule


async def update_rule(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    rule_id: uuid.UUID,
    definition: RuleDefinition,
    actor: str,
) -> tuple[Rule, RuleVersion]:
    """A new version of the rule; what earlier versions paid stays as it was."""
    await _require_reward_offer(session, tenant_id, definition)
    rule = await _lock_rule(session, tenant_id, rule_id)
    rule.version += 1
    rule.trigger = definition.trigger.value
    rule.priority = definition.priority
    rule.updated_at = utcnow()
    session.add(rule)
    await session.flush()
    if definition.budget_points is not None or definition.budget_count is not None:
        # Payouts without a budget kept no totals; those in flight held the row shared, so
        # the lock above waited for them: the count is exact from here on.
        await session.execute(_RECOUNT, {"id": rule.id})
        await session.refresh(rule)
    return rule, await _add_version(session, rule, definition, actor)


async def disable_rule(*, session: AsyncSession, tenant_id: uuid.UUID, rule_id: uuid.UUID) -> Rule:
    """Stop the rule paying (its versions and payouts stay)."""
    rule = await _lock_rule(session, tenant_id, rule_id)
    rule.enabled = False
    rule.updated_at = utcnow()
    session.add(rule)
    await session.flush()
    return rule


async def get_rule(
    session: AsyncSession, *, tenant_id: uuid.UUID, rule_id: uuid.UUID
) -> Rule | None:
    """The tenant's rule, or None."""
    found: Rule | None = (
        await session.exec(select(Rule).where(Rule.tenant_id == tenant_id, Rule.id == rule_id))
    ).first()
    return found


async def list_rules(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Rule]:
    """The tenant's rules, oldest first."""
    query = select(Rule).where(Rule.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tuple_(col(Rule.created_at), col(Rule.id)) > tuple_(*after))
    rows = await session.exec(query.order_by(col(Rule.created_at), col(Rule.id)).limit(limit))
    return list(rows.all())


async def versions(
    session: AsyncSession, *, tenant_id: uuid.UUID, rule_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RuleVersion]]:
    """Every version of the rules, newest first."""
    rows = await session.exec(
        select(RuleVersion)
        .where(RuleVersion.tenant_id == tenant_id, col(RuleVersion.rule_id).in_(rule_ids))
        .order_by(col(RuleVersion.version).desc())
    )
    found: dict[uuid.UUID, list[RuleVersion]] = defaultdict(list)
    for version in rows.all():
        found[version.rule_id].append(version)
    return found


async def payouts(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    rule_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[RulePayout]:
    """The rule's payouts, newest first."""
    query = select(RulePayout).where(
        RulePayout.tenant_id == tenant_id, RulePayout.rule_id == rule_id
    )
    if before is not None:
        query = query.where(
            tuple_(col(RulePayout.created_at), col(RulePayout.id)) < tuple_(*before)
        )
    rows = await session.exec(
        query.order_by(col(RulePayout.created_at).desc(), col(RulePayout.id).desc()).limit(limit)
    )
    return list(rows.all())


def signup_definition(points: int) -> RuleDefinition:
    """The default rule of a tenant: ``points`` once, when a customer registers."""
    return RuleDefinition(
        name="welcome",
        trigger=Trigger.CUSTOMER_REGISTERED,
        reward=Reward(kind=RewardKind.POINTS, points=points, tier_multiplier=False),
        caps=[Cap(period=Period.EVER, count=1)],
    )


async def ensure_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, welcome_points: int
) -> bool:
    """Set up a tenant rewards sees for the first time (its sign-up rule); True if it was new.

    Concurrent first events of a tenant wait for the first to commit its row, then do nothing.
    """
    known = await session.exec(
        select(RuleTenant.tenant_id).where(RuleTenant.tenant_id == tenant_id)
    )
    if known.first() is not None:
        return False
    inserted = await session.execute(
        insert(RuleTenant)
        .values(tenant_id=tenant_id, created_at=utcnow())
        .on_conflict_do_nothing()
        .returning(col(RuleTenant.tenant_id))
    )
    if inserted.first() is None:
        return False
    if welcome_points > 0:
        await create_rule(
            session=session,
            tenant_id=tenant_id,
            definition=signup_definition(welcome_points),
            actor=RULE_ACTOR,
            default_key=SIGNUP_KEY,
        )
    return True


# Trigger events ---------------------------------------------------------------------------


async def segment_changed(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    segment: str,
    changed_at: datetime,
) -> None:
    """Keep the customer's latest segment (an older, late event changes nothing)."""
    stmt = insert(CustomerSegment).values(
        tenant_id=tenant_id, customer_id=customer_id, segment=segment, changed_at=changed_at
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "customer_id"],
            set_={"segment": stmt.excluded.segment, "changed_at": stmt.excluded.changed_at},
            where=col(CustomerSegment.changed_at) <= stmt.excluded.changed_at,
        )
    )


_SNAPSHOT = text(
    """
    SELECT (SELECT facts FROM rewards.trigger_events
             WHERE tenant_id = CAST(:t AS uuid) AND event_id = CAST(:e AS uuid)) AS stored,
           (SELECT segment FROM rewards.customer_segments
             WHERE tenant_id = CAST(:t AS uuid) AND customer_id = CAST(:c AS uuid)) AS segment,
           tier.id AS tier_id, tier.multiplier,
           ARRAY(SELECT purpose FROM rewards.consents
                  WHERE tenant_id = CAST(:t AS uuid) AND customer_id = CAST(:c AS uuid)
                    AND granted) AS consents,
           EXISTS (SELECT FROM rewards.trigger_events
                    WHERE tenant_id = CAST(:t AS uuid) AND customer_id = CAST(:c AS uuid)
                      AND type = CAST(:type AS text)) AS earlier
      FROM (SELECT 1) AS one
      LEFT JOIN LATERAL (
           SELECT t.id, t.multiplier FROM rewards.customer_tiers ct
             JOIN rewards.tiers t ON t.id = ct.tier_id
            WHERE ct.tenant_id = CAST(:t AS uuid) AND ct.customer_id = CAST(:c AS uuid)
              AND t.removed_at IS NULL) AS tier ON true
    """
)


async def record_trigger(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    trigger: Trigger,
    customer_id: uuid.UUID,
    occurred_at: datetime,
    **data: Any,
) -> Facts:
    """Store the event with the facts conditions look at, the customer's context snapshotted
    (segment, tier, consents, first time); a stored event returns its stored facts."""
    # One round trip reads everything the snapshot needs: the stored facts of a redelivered
    # event, the segment, the tier and its multiplier, the granted consents, and whether an
    # earlier event of the type exists (whether there is one, not how many: a loyal
    # customer's thousandth interaction must not count the other 999).
    row = (
        await session.execute(
            _SNAPSHOT,
            {"t": tenant_id, "c": customer_id, "e": event_id, "type": trigger.value},
        )
    ).one()
    if row.stored is not None:
        return Facts.model_validate(row.stored)
    segment, tier_id, consents, earlier = row.segment, row.tier_id, row.consents, row.earlier
    multiplier = float(row.multiplier) if tier_id is not None else 1.0
    facts = Facts(
        trigger=trigger,
        customer_id=customer_id,
        occurred_at=occurred_at,
        segment=segment,
        tier_id=tier_id,
        tier_multiplier=multiplier,
        consents=frozenset(consents),
        first_time=not earlier,
        **data,
    )
    await session.execute(
        insert(TriggerEvent)
        .values(
            event_id=event_id,
            tenant_id=tenant_id,
            type=trigger.value,
            customer_id=customer_id,
            occurred_at=occurred_at,
            facts=facts.model_dump(mode="json"),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    return facts


# Pending triggers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A trigger event of a profile no customer is linked to, for :func:`keep_pending_many`."""

    event_id: uuid.UUID
    trigger: Trigger
    profile: ProfileRef
    occurred_at: datetime
    data: dict[str, Any]


_KEEP_PENDING = text(
    "INSERT INTO rewards.pending_triggers (tenant_id, event_id, type, channel,"
    " platform_user_id, occurred_at, data, created_at)"
    " SELECT CAST(:t AS uuid), e, ty, ch, u, o, CAST(d AS jsonb), CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:events AS uuid[]), CAST(:types AS text[]), CAST(:channels AS text[]),"
    " CAST(:users AS text[]), CAST(:occurred AS timestamptz[]), CAST(:data AS text[]))"
    " AS p(e, ty, ch, u, o, d)"
    " ON CONFLICT DO NOTHING"
)


async def keep_pending(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    trigger: Trigger,
    profile: ProfileRef,
    occurred_at: datetime,
    **data: Any,
) -> None:
    """Keep a trigger event of a profile no customer is linked to, until a link pays it."""
    await session.execute(
        insert(PendingTrigger)
        .values(
            tenant_id=tenant_id,
            event_id=event_id,
            type=trigger.value,
            channel=profile.channel,
            platform_user_id=profile.platform_user_id,
            occurred_at=occurred_at,
            data=to_jsonable_python(data),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )


async def keep_pending_many(
    session: AsyncSession, *, tenant_id: uuid.UUID, pending: Sequence[Pending]
) -> None:
    """:func:`keep_pending` for many events, in one statement."""
    if not pending:
        return
    await session.execute(
        _KEEP_PENDING,
        {
            "t": tenant_id,
            "now": utcnow(),
            "events": [p.event_id for p in pending],
            "types": [p.trigger.value for p in pending],
            "channels": [p.profile.channel for p in pending],
            "users": [p.profile.platform_user_id for p in pending],
            "occurred": [p.occurred_at for p in pending],
            "data": [orjson.dumps(to_jsonable_python(p.data)).decode() for p in pending],
        },
    )


async def take_pending(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    profile: ProfileRef,
    since: datetime,
) -> list[PendingTrigger]:
    """Remove the profile's pending triggers; those that happened at or after ``since``,
    oldest first. Deleting them is the claim: a concurrent link of the profile waits, then
    finds none."""
    rows = await session.exec(
        delete(PendingTrigger)
        .where(
            col(PendingTrigger.tenant_id) == tenant_id,
            col(PendingTrigger.channel) == profile.channel,
            col(PendingTrigger.platform_user_id) == profile.platform_user_id,
        )
        .returning(PendingTrigger)
    )
    taken: list[PendingTrigger] = [row for row in rows.scalars() if row.occurred_at >= since]
    return sorted(taken, key=lambda p: (p.occurred_at, str(p.event_id)))


async def forget_pending(
    session: AsyncSession, *, tenant_id: uuid.UUID, profiles: Sequence[ProfileRef]
) -> None:
    """Delete the pending triggers of the profiles (erasure)."""
    if not profiles:
        return
    await session.execute(
        delete(PendingTrigger).where(
            col(PendingTrigger.tenant_id) == tenant_id,
            or_(
                *(
                    (col(PendingTrigger.channel) == p.channel)
                    & (col(PendingTrigger.platform_user_id) == p.platform_user_id)
                    for p in profiles
                )
            ),
        )
    )


async def prune_pending(db: Database, *, max_age_days: int, now: datetime | None = None) -> int:
    """Delete pending triggers that happened more than ``max_age_days`` ago; how many."""
    before = (now or utcnow()) - timedelta(days=max_age_days)
    async with db.session() as session, session.begin():
        result = await session.execute(
            delete(PendingTrigger).where(col(PendingTrigger.occurred_at) < before)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


# Payouts ----------------------------------------------------------------------------------


async def current_rules(
    session: AsyncSession, tenant_id: uuid.UUID, trigger: Trigger
) -> list[tuple[Rule, RuleDefinition]]:
    """The tenant's enabled rules of ``trigger`` with their current definitions, in the order
    they pay (highest priority first)."""
    rows = await session.exec(
        select(Rule, RuleVersion)
        .join(
            RuleVersion,
            (col(RuleVersion.rule_id) == col(Rule.id))
            & (col(RuleVersion.version) == col(Rule.version)),
        )
        .where(Rule.tenant_id == tenant_id, Rule.trigger == trigger.value, col(Rule.enabled))
        # Highest priority first; ties in the order the rules were made (a stable order also
        # means concurrent payouts take budget row locks in one order).
        .order_by(col(Rule.priority).desc(), col(Rule.created_at), col(Rule.id))
    )
    return [(rule, definition_of(version)) for rule, version in rows.all()]


async def _within_caps(
    session: AsyncSession, rule: Rule, caps: Sequence[Cap], facts: Facts
) -> bool:
    for cap in caps:
        query = (
            select(func.count())
            .select_from(RulePayout)
            .where(RulePayout.rule_id == rule.id, RulePayout.customer_id == facts.customer_id)
        )
        bounds = period_bounds(cap.period, facts.occurred_at)
        if bounds is not None:
            query = query.where(
                col(RulePayout.occurred_at) >= bounds[0], col(RulePayout.occurred_at) < bounds[1]
            )
        if (await session.exec(query)).one() >= cap.count:
            return False
    return True


_SHARE_RULE = text("SELECT 1 FROM rewards.rules WHERE id = CAST(:id AS uuid) FOR SHARE")

_RECOUNT = text(
    "UPDATE rewards.rules SET "
    "paid_points = (SELECT COALESCE(sum(points), 0) FROM rewards.rule_payouts "
    "WHERE rule_id = CAST(:id AS uuid)), "
    "paid_count = (SELECT count(*) FROM rewards.rule_payouts WHERE rule_id = CAST(:id AS uuid)) "
    "WHERE id = CAST(:id AS uuid)"
)


async def paid_totals(
    session: AsyncSession, *, tenant_id: uuid.UUID, rule_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """``(points, payouts)`` each rule has paid, across versions (from its payouts)."""
    rows = await session.execute(
        select(col(RulePayout.rule_id), func.coalesce(func.sum(RulePayout.points), 0), func.count())
        .where(col(RulePayout.tenant_id) == tenant_id, col(RulePayout.rule_id).in_(rule_ids))
        .group_by(col(RulePayout.rule_id))
    )
    return {rule_id: (int(points), int(count)) for rule_id, points, count in rows.all()}


async def _take_budget(
    session: AsyncSession, rule: Rule, definition: RuleDefinition, points: int
) -> bool:
    """Count the payout against the rule's totals unless that would pass its budget.

    Only a rule with a budget keeps running totals on its row (``paid_points``,
    ``paid_count``): updating that one row would otherwise hold every payout of the rule
    behind one lock until its transaction commits (one rule, ~45 payouts/s on 2 CPUs, see
    bench/RESULTS.md). A payout of a rule without a budget takes only a shared lock on the
    row, which payouts do not wait for among themselves but a change of the rule does: when a
    new version brings a budget, ``update_rule`` recounts the totals from the payouts once
    those in flight have committed. What a rule has paid is read from ``rule_payouts``
    (:func:`paid_totals`).
    """
    if definition.budget_points is None and definition.budget_count is None:
        await session.execute(_SHARE_RULE, {"id": rule.id})
        return True
    stmt = (
        update(Rule)
        .where(col(Rule.id) == rule.id)
        .values(paid_points=col(Rule.paid_points) + points, paid_count=col(Rule.paid_count) + 1)
        .returning(col(Rule.id))
        .execution_options(synchronize_session=False)
    )
    if definition.budget_points is not None:
        stmt = stmt.where(col(Rule.paid_points) + points <= definition.budget_points)
    if definition.budget_count is not None:
        stmt = stmt.where(col(Rule.paid_count) + 1 <= definition.budget_count)
    return (await session.execute(stmt)).first() is not None


async def pay(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    facts: Facts,
    ttl_days: int = ledger.DEFAULT_TTL_DAYS,
) -> list[RulePayout]:
    """Pay every rule the event matches, highest priority first, until one that stops.

    The caller has locked the customer's account (``open_account``). Recomputes the
    customer's tier when points were credited.
    """
    made: list[RulePayout] = []
    for rule, definition in await current_rules(session, tenant_id, facts.trigger):
        payout = await _pay_rule(session, rule, definition, event_id, facts, ttl_days)
        if payout is None:
            continue
        made.append(payout)
        if definition.stop_after:
            break
    if any(p.points for p in made):
        await tiers.recompute(session, tenant_id=tenant_id, customer_id=facts.customer_id)
    return made


async def _pay_rule(
    session: AsyncSession,
    rule: Rule,
    definition: RuleDefinition,
    event_id: uuid.UUID,
    facts: Facts,
    ttl_days: int,
) -> RulePayout | None:
    if not matches(definition, facts):
        return None
    paid = (
        await session.exec(
            select(RulePayout).where(
                RulePayout.tenant_id == rule.tenant_id,
                RulePayout.event_id == event_id,
                RulePayout.rule_id == rule.id,
            )
        )
    ).first()
    if paid is not None:
        return paid
    points = reward_points(definition.reward, facts)
    coupon = definition.reward.kind is RewardKind.COUPON
    if not coupon and points <= 0:
        return None
    if not await _within_caps(session, rule, definition.caps, facts):
        return None
    if not await _take_budget(session, rule, definition, points):
        return None
    payout = RulePayout(
        tenant_id=rule.tenant_id,
        rule_id=rule.id,
        version=rule.version,
        event_id=event_id,
        customer_id=facts.customer_id,
        occurred_at=facts.occurred_at,
        points=points,
        purchase_id=facts.purchase_id,
    )
    if points:
        movement = await ledger.earn(
            session,
            tenant_id=rule.tenant_id,
            customer_id=facts.customer_id,
            points=points,
            reason=definition.name,
            idempotency_key=f"rule:{rule.id}:event:{event_id}",
            actor=RULE_ACTOR,
            ttl_days=ttl_days,
        )
        payout.entry_id = movement.entry.id
    if coupon:
        assert definition.reward.offer_id is not None
        payout.offer_id = definition.reward.offer_id
        payout.grant_id = uuid.uuid5(GRANTS, f"{event_id}:{rule.id}")
        await record_event(
            session,
            CouponGranted(
                grant_id=payout.grant_id,
                customer_id=facts.customer_id,
                offer_id=payout.offer_id,
                source=f"rule:{rule.id}:v{rule.version}",
                source_event_id=event_id,
            ),
            tenant_id=rule.tenant_id,
            subject=str(facts.customer_id),
        )
    session.add(payout)
    await session.flush()
    return payout


# Refunds ----------------------------------------------------------------------------------


async def refund_purchase(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    purchase_id: uuid.UUID,
    refund_id: uuid.UUID,
    amount_cents: int,
    original_amount_cents: int | None,
) -> list[PayoutRefund]:
    """Take back what the purchase's payouts earned, in proportion to the refunded amount.

    Proportions are cumulative (two half refunds take back all of it). A full refund of an
    untouched payout reverses its ledger entry; otherwise a negative adjustment takes back
    what the customer still has, and the rest is recorded as a shortfall. Keyed
    ``refund:<refund id>:payout:<payout id>``, once per refund.
    """
    paid = (
        await session.exec(
            select(RulePayout)
            .where(
                RulePayout.tenant_id == tenant_id,
                RulePayout.purchase_id == purchase_id,
                col(RulePayout.points) > 0,
            )
            .order_by(col(RulePayout.created_at), col(RulePayout.id))
        )
    ).all()
    if not paid:
        return []
    original = original_amount_cents or await _purchase_amount(session, tenant_id, purchase_id)
    if not original or original <= 0:
        return []
    await ledger.hold_account(session=session, tenant_id=tenant_id, customer_id=paid[0].customer_id)
    done: list[PayoutRefund] = []
    for payout in paid:
        refund = await _refund_payout(session, payout, refund_id, amount_cents, original)
        if refund is not None:
            done.append(refund)
    if done:
        await tiers.recompute(session, tenant_id=tenant_id, customer_id=paid[0].customer_id)
    return done


async def _purchase_amount(
    session: AsyncSession, tenant_id: uuid.UUID, purchase_id: uuid.UUID
) -> int | None:
    found = (
        await session.execute(
            text(
                "SELECT (facts->>'amount_cents')::bigint FROM rewards.trigger_events"
                " WHERE tenant_id = :t AND type = :type AND facts->>'purchase_id' = :p"
            ),
            {"t": tenant_id, "type": Trigger.PURCHASE_RECORDED.value, "p": str(purchase_id)},
        )
    ).first()
    return int(found[0]) if found and found[0] is not None else None


async def _refund_payout(
    session: AsyncSession,
    payout: RulePayout,
    refund_id: uuid.UUID,
    amount_cents: int,
    original: int,
) -> PayoutRefund | None:
    earlier = (
        await session.exec(select(PayoutRefund).where(PayoutRefund.payout_id == payout.id))
    ).all()
    if any(r.refund_id == refund_id for r in earlier):
        return None
    refunded_cents = min(original, sum(r.amount_cents for r in earlier) + amount_cents)
    taken = sum(r.points + r.shortfall for r in earlier)
    take = min(payout.points, payout.points * refunded_cents // original) - taken
    if take <= 0:
        return None
    key = f"refund:{refund_id}:payout:{payout.id}"
    reason = "purchase refunded"
    movement: ledger.Movement | None = None
    if not earlier and take == payout.points and payout.entry_id is not None:
        try:
            movement = await ledger.reverse(
                session,
                tenant_id=payout.tenant_id,
                entry_id=payout.entry_id,
                reason=reason,
                idempotency_key=key,
                actor=RULE_ACTOR,
            )
        except BadUserInput:
            # Some of the points were spent or expired: take back what is left instead.
            movement = None
        except Conflict:
            # Staff reversed the entry already: the points are back; take nothing more.
            return await _record_refund(session, payout, refund_id, amount_cents, take, 0, None)
    debited = take
    if movement is None:
        balance = (
            await ledger.get_balances(
                session=session, tenant_id=payout.tenant_id, customer_ids=[payout.customer_id]
            )
        ).get(payout.customer_id, 0)
        debited = min(take, balance)
        if debited > 0:
            movement = await ledger.adjust(
                session,
                tenant_id=payout.tenant_id,
                customer_id=payout.customer_id,
                points=-debited,
                reason=reason,
                idempotency_key=key,
                actor=RULE_ACTOR,
            )
    entry_id = movement.entry.id if movement else None
    return await _record_refund(
        session, payout, refund_id, amount_cents, debited, take - debited, entry_id
    )


async def _record_refund(
    session: AsyncSession,
    payout: RulePayout,
    refund_id: uuid.UUID,
    amount_cents: int,
    points: int,
    shortfall: int,
    entry_id: uuid.UUID | None,
) -> PayoutRefund:
    refund = PayoutRefund(
        tenant_id=payout.tenant_id,
        refund_id=refund_id,
        payout_id=payout.id,
        amount_cents=amount_cents,
        points=points,
        shortfall=shortfall,
        entry_id=entry_id,
    )
    session.add(refund)
    await session.flush()
    return refund


# Dry runs ---------------------------------------------------------------------------------


@dataclass
class CustomerTotal:
    customer_id: uuid.UUID
    payouts: int = 0
    points: int = 0


@dataclass
class DryRun:
    """What a rule would have paid over the stored events of a time range (nothing is paid)."""

    events: int = 0
    matched: int = 0
    payouts: int = 0
    points: int = 0
    coupons: int = 0
    capped: int = 0
    over_budget: int = 0
    # More events than a dry run reads: the totals cover the first MAX_DRY_RUN_EVENTS.
    truncated: bool = False
    top_customers: list[CustomerTotal] = field(default_factory=list)


def simulate(definition: RuleDefinition, events: Sequence[Facts]) -> DryRun:
    """Play ``definition`` over ``events`` (in time order) as if it had been the only rule:
    conditions, caps and budget as the payout path applies them."""
    result = DryRun(events=len(events))
    paid_at: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    totals: dict[uuid.UUID, CustomerTotal] = {}
    for facts in events:
        if not matches(definition, facts):
            continue
        result.matched += 1
        points = reward_points(definition.reward, facts)
        coupon = definition.reward.kind is RewardKind.COUPON
        if not coupon and points <= 0:
            continue
        if not cap_allows(definition.caps, paid_at[facts.customer_id], facts.occurred_at):
            result.capped += 1
            continue
        if (
            definition.budget_points is not None
            and result.points + points > definition.budget_points
        ) or (definition.budget_count is not None and result.payouts + 1 > definition.budget_count):
            result.over_budget += 1
            continue
        paid_at[facts.customer_id].append(facts.occurred_at)
        result.payouts += 1
        result.points += points
        result.coupons += int(coupon)
        total = totals.setdefault(facts.customer_id, CustomerTotal(facts.customer_id))
        total.payouts += 1
        total.points += points
    result.top_customers = sorted(
        totals.values(), key=lambda t: (-t.points, -t.payouts, str(t.customer_id))
    )[:TOP_CUSTOMERS]
    return result


def check_range(since: datetime, until: datetime) -> None:
    """BAD_USER_INPUT unless ``since`` < ``until`` within MAX_DRY_RUN_DAYS."""
    if until <= since:
        raise BadUserInput("to: must be after from", field="to")
    if until - since > timedelta(days=MAX_DRY_RUN_DAYS):
        raise BadUserInput(f"to: at most {MAX_DRY_RUN_DAYS} days after from", field="to")


async def dry_run(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    definition: RuleDefinition,
    since: datetime,
    until: datetime,
) -> DryRun:
    """What ``definition`` would have paid for the tenant's stored events in [since, until)."""
    check_range(since, until)
    rows = await session.execute(
        select(TriggerEvent.facts)
        .where(
            TriggerEvent.tenant_id == tenant_id,
            TriggerEvent.type == definition.trigger.value,
            col(TriggerEvent.occurred_at) >= since,
            col(TriggerEvent.occurred_at) < until,
        )
        .order_by(col(TriggerEvent.occurred_at), col(TriggerEvent.event_id))
        .limit(MAX_DRY_RUN_EVENTS + 1)
    )
    events = [Facts.model_validate(facts) for (facts,) in rows.all()]
    result = simulate(definition, events[:MAX_DRY_RUN_EVENTS])
    result.truncated = len(events) > MAX_DRY_RUN_EVENTS
    return result
