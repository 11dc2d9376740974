"""Paying a batch of trigger events of one tenant with a fixed number of statements.

What :func:`rewards.rules.service.record_trigger` and :func:`rewards.rules.service.pay` do
one event at a time (~15 statements an event with a capped rule, ~20 with tiers), done for a
whole batch: the rules read once, the customers' context (segment, tier, consents, whether
an earlier event of the trigger exists) in one statement, the caps' earlier payouts in one,
the budgeted rules' rows locked and counted once, every credit in one ledger statement
(``accounts.credits.earn_many``), the stored events, the payouts and the budgets' totals in
one statement each, coupon grants as one multi-row outbox insert, and each customer's tier
recomputed once.

The outcome is the one-by-one path's, event after event in delivery order (caps count the
batch's own payouts, budgets run out at the same event), with one difference: when tiers are
in use, every event of a customer in the batch sees the tier the customer had when the batch
began, and the tier is recomputed once per customer at its end (one-by-one, each payout could
move the tier before the customer's next event). When the batch holds an event stored or paid
already (a redelivery), nothing is done and the caller takes the one-by-one path.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.events import record_events
from rewards.accounts.credits import Credit, HeldAccount, earn_many
from rewards.offers.events import CouponGranted
from rewards.rules.conditions import (
    Facts,
    RewardKind,
    RuleDefinition,
    Trigger,
    cap_allows,
    matches,
    period_bounds,
    reward_points,
)
from rewards.rules.models import Rule
from rewards.rules.service import GRANTS, RULE_ACTOR
from rewards.tiers import service as tiers


@dataclass(frozen=True)
class TriggerCall:
    """One trigger event of a customer, for :func:`pay_many`."""

    event_id: uuid.UUID
    customer_id: uuid.UUID
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """A batch of one tenant's trigger events, its customers' accounts held (locked)."""

    tenant_id: uuid.UUID
    trigger: Trigger
    calls: Sequence[TriggerCall]
    accounts: dict[uuid.UUID, HeldAccount]
    ttl_days: int


# Whether the batch needs the one-by-one path (events stored or paid already: a redelivery),
# and whether tiers are in use.
_STATE = text(
    """
    SELECT EXISTS (SELECT FROM rewards.trigger_events
                    WHERE event_id = ANY(CAST(:events AS uuid[]))) AS stored,
           EXISTS (SELECT FROM rewards.rule_payouts WHERE tenant_id = CAST(:t AS uuid)
                      AND event_id = ANY(CAST(:events AS uuid[]))) AS paid,
           EXISTS (SELECT FROM rewards.tiers WHERE tenant_id = CAST(:t AS uuid)
                      AND removed_at IS NULL) AS tiers,
           EXISTS (SELECT FROM rewards.customer_tiers WHERE tenant_id = CAST(:t AS uuid)
                      AND customer_id = ANY(CAST(:customers AS uuid[]))
                      AND tier_id IS NOT NULL) AS tiered
    """
)

# record_trigger's snapshot of each customer of a batch.
_CONTEXT = text(
    """
    SELECT c.id AS customer_id,
           (SELECT segment FROM rewards.customer_segments
             WHERE tenant_id = CAST(:t AS uuid) AND customer_id = c.id) AS segment,
           tier.id AS tier_id, tier.multiplier,
           ARRAY(SELECT purpose FROM rewards.consents
                  WHERE tenant_id = CAST(:t AS uuid) AND customer_id = c.id AND granted)
             AS consents,
           EXISTS (SELECT FROM rewards.trigger_events
                    WHERE tenant_id = CAST(:t AS uuid) AND customer_id = c.id
                      AND type = CAST(:type AS text)) AS earlier
      FROM unnest(CAST(:customers AS uuid[])) AS c(id)
      LEFT JOIN LATERAL (
           SELECT t.id, t.multiplier FROM rewards.customer_tiers ct
             JOIN rewards.tiers t ON t.id = ct.tier_id
            WHERE ct.tenant_id = CAST(:t AS uuid) AND ct.customer_id = c.id
              AND t.removed_at IS NULL) AS tier ON true
    """
)

# The earlier payouts that the caps of the batch's rules count.
_CAPPED = text(
    "SELECT rule_id, customer_id, occurred_at FROM rewards.rule_payouts"
    " WHERE rule_id = ANY(CAST(:rules AS uuid[])) AND customer_id = ANY(CAST(:customers AS uuid[]))"
    " AND (CAST(:since AS timestamptz) IS NULL OR occurred_at >= CAST(:since AS timestamptz))"
)

# The budgeted rules' totals, their rows locked in the order payouts take them.
_BUDGETS = text(
    "SELECT id, paid_points, paid_count FROM rewards.rules"
    " WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY array_position(CAST(:ids AS uuid[]), id)"
    " FOR UPDATE"
)
_SET_BUDGETS = text(
    "UPDATE rewards.rules r SET paid_points = r.paid_points + b.points,"
    " paid_count = r.paid_count + b.count"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:points AS bigint[]), CAST(:counts AS bigint[]))"
    " AS b(id, points, count) WHERE r.id = b.id"
)
# A rule without a budget: held shared until commit, so a change of the rule waits for it.
_SHARE_RULES = text(
    "SELECT 1 FROM rewards.rules WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR SHARE"
)

_STORE_EVENTS = text(
    "INSERT INTO rewards.trigger_events (event_id, tenant_id, type, customer_id, occurred_at,"
    " facts, created_at)"
    " SELECT e, CAST(:t AS uuid), CAST(:type AS text), c, o, CAST(f AS jsonb),"
    " CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:events AS uuid[]), CAST(:customers AS uuid[]),"
    " CAST(:occurred AS timestamptz[]), CAST(:facts AS text[])) AS x(e, c, o, f)"
    " ON CONFLICT DO NOTHING"
)
_STORE_PAYOUTS = text(
    "INSERT INTO rewards.rule_payouts (id, tenant_id, rule_id, version, event_id, customer_id,"
    " occurred_at, points, entry_id, offer_id, grant_id, purchase_id, created_at)"
    " SELECT id, CAST(:t AS uuid), rule_id, version, event_id, customer_id, occurred_at,"
    " points, entry_id, offer_id, grant_id, purchase_id, CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:rules AS uuid[]), CAST(:versions AS int[]),"
    " CAST(:events AS uuid[]), CAST(:customers AS uuid[]), CAST(:occurred AS timestamptz[]),"
    " CAST(:points AS bigint[]), CAST(:entries AS uuid[]), CAST(:offers AS uuid[]),"
    " CAST(:grants AS uuid[]), CAST(:purchases AS uuid[]))"
    " AS p(id, rule_id, version, event_id, customer_id, occurred_at, points, entry_id, offer_id,"
    " grant_id, purchase_id)"
)


@dataclass
class _Payout:
    rule: Rule
    call: TriggerCall
    points: int
    purchase_id: uuid.UUID | None
    offer_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None


@dataclass
class _Budget:
    points: int
    count: int
    added_points: int = 0
    added_count: int = 0


async def pay_many(
    session: AsyncSession, *, batch: Batch, rules: Sequence[tuple[Rule, RuleDefinition]]
) -> bool:
    """Store and pay the batch's events in order (``rules``: the trigger's current rules,
    highest priority first); False, having written nothing, when the batch needs the
    one-by-one path (see the module doc)."""
    if not batch.calls:
        return True
    tenant_id, trigger = batch.tenant_id, batch.trigger
    customers = sorted({call.customer_id for call in batch.calls})
    events = [call.event_id for call in batch.calls]
    state = (
        await session.execute(_STATE, {"t": tenant_id, "events": events, "customers": customers})
    ).one()
    if state.stored or state.paid:
        return False
    context = {
        row.customer_id: row
        for row in (
            await session.execute(
                _CONTEXT, {"t": tenant_id, "customers": customers, "type": trigger.value}
            )
        ).all()
    }
    paid_at = await _earlier_payouts(session, batch, rules, customers)
    budgets = await _hold_budgets(session, rules)
    earlier = {customer_id: bool(row.earlier) for customer_id, row in context.items()}
    stored: list[tuple[TriggerCall, str]] = []
    payouts: list[_Payout] = []
    for call in batch.calls:
        row = context[call.customer_id]
        facts = Facts(
            trigger=trigger,
            customer_id=call.customer_id,
            occurred_at=call.occurred_at,
            segment=row.segment,
            tier_id=row.tier_id,
            tier_multiplier=float(row.multiplier) if row.tier_id is not None else 1.0,
            consents=frozenset(row.consents),
            first_time=not earlier[call.customer_id],
            **call.data,
        )
        earlier[call.customer_id] = True
        stored.append((call, facts.model_dump_json()))
        for rule, definition in rules:
            payout = _payout(rule, definition, call, facts, paid_at, budgets)
            if payout is None:
                continue
            payouts.append(payout)
            if definition.stop_after:
                break
    shared = sorted({p.rule.id for p in payouts if p.rule.id not in budgets})
    if shared:
        await session.execute(_SHARE_RULES, {"ids": shared})
    credited = [p for p in payouts if p.points]
    entry_ids = await earn_many(
        session,
        tenant_id=tenant_id,
        accounts=batch.accounts,
        credits=[
            Credit(
                customer_id=p.call.customer_id,
                points=p.points,
                reason=_name(rules, p.rule),
                idempotency_key=f"rule:{p.rule.id}:event:{p.call.event_id}",
            )
            for p in credited
        ],
        actor=RULE_ACTOR,
        ttl_days=batch.ttl_days,
        now=utcnow(),
    )
    if entry_ids is None:
        return False
    for payout, entry_id in zip(credited, entry_ids, strict=True):
        payout.entry_id = entry_id
    await _store(session, batch, stored, payouts)
    await _count_budgets(session, budgets)
    await _grant_coupons(session, tenant_id, payouts)
    if state.tiers or state.tiered:
        # One-by-one: an interaction always recomputes (engagement tiers count them), other
        # triggers when points were credited.
        moved = (
            customers
            if trigger is Trigger.INTERACTION_RECORDED
            else sorted({p.call.customer_id for p in credited})
        )
        for customer_id in moved:
            await tiers.recompute(session, tenant_id=tenant_id, customer_id=customer_id)
    return True


def _name(rules: Sequence[tuple[Rule, RuleDefinition]], rule: Rule) -> str:
    return next(d.name for r, d in rules if r.id == rule.id)


def _payout(
    rule: Rule,
    definition: RuleDefinition,
    call: TriggerCall,
    facts: Facts,
    paid_at: dict[tuple[uuid.UUID, uuid.UUID], list[datetime]],
    budgets: dict[uuid.UUID, _Budget],
) -> _Payout | None:
    """``_pay_rule``'s decision for one event and rule, counting the batch's own payouts."""
    if not matches(definition, facts):
        return None
    points = reward_points(definition.reward, facts)
    coupon = definition.reward.kind is RewardKind.COUPON
    if not coupon and points <= 0:
        return None
    times = paid_at[(rule.id, call.customer_id)]
    if definition.caps and not cap_allows(definition.caps, times, facts.occurred_at):
        return None
    budget = budgets.get(rule.id)
    if budget is not None:
        if (
            definition.budget_points is not None
            and budget.points + points > definition.budget_points
        ) or (definition.budget_count is not None and budget.count + 1 > definition.budget_count):
            return None
        budget.points += points
        budget.count += 1
        budget.added_points += points
        budget.added_count += 1
    times.append(facts.occurred_at)
    payout = _Payout(rule=rule, call=call, points=points, purchase_id=facts.purchase_id)
    if coupon:
        payout.offer_id = definition.reward.offer_id
        payout.grant_id = uuid.uuid5(GRANTS, f"{call.event_id}:{rule.id}")
    return payout


async def _earlier_payouts(
    session: AsyncSession,
    batch: Batch,
    rules: Sequence[tuple[Rule, RuleDefinition]],
    customers: list[uuid.UUID],
) -> dict[tuple[uuid.UUID, uuid.UUID], list[datetime]]:
    """The times of the payouts that capped rules made to the batch's customers, as far back
    as their caps look (``ever``: all of them)."""
    paid_at: dict[tuple[uuid.UUID, uuid.UUID], list[datetime]] = defaultdict(list)
    capped = [(rule, definition) for rule, definition in rules if definition.caps]
    if not capped:
        return paid_at
    bounds = [
        period_bounds(cap.period, call.occurred_at)
        for _, definition in capped
        for cap in definition.caps
        for call in batch.calls
    ]
    # A cap over ``ever`` counts every earlier payout; the others those of their periods.
    since = None if any(b is None for b in bounds) else min(b[0] for b in bounds if b)
    rows = await session.execute(
        _CAPPED,
        {"rules": [rule.id for rule, _ in capped], "customers": customers, "since": since},
    )
    for rule_id, customer_id, occurred_at in rows.all():
        paid_at[(rule_id, customer_id)].append(occurred_at)
    return paid_at


async def _hold_budgets(
    session: AsyncSession, rules: Sequence[tuple[Rule, RuleDefinition]]
) -> dict[uuid.UUID, _Budget]:
    """The budgeted rules' totals, their rows locked until commit (in the rules' order, the
    order the one-by-one path takes them in)."""
    ids = [
        rule.id
        for rule, definition in rules
        if definition.budget_points is not None or definition.budget_count is not None
    ]
    if not ids:
        return {}
    rows = await session.execute(_BUDGETS, {"ids": ids})
    return {row.id: _Budget(int(row.paid_points), int(row.paid_count)) for row in rows.all()}


async def _count_budgets(session: AsyncSession, budgets: dict[uuid.UUID, _Budget]) -> None:
    counted = {rule_id: b for rule_id, b in budgets.items() if b.added_count}
    if counted:
        await session.execute(
            _SET_BUDGETS,
            {
                "ids": list(counted),
                "points": [b.added_points for b in counted.values()],
                "counts": [b.added_count for b in counted.values()],
            },
        )


async def _store(
    session: AsyncSession,
    batch: Batch,
    stored: list[tuple[TriggerCall, str]],
    payouts: list[_Payout],
) -> None:
    """The batch's trigger events and payouts, one statement each."""
    now = utcnow()
    await session.execute(
        _STORE_EVENTS,
        {
            "t": batch.tenant_id,
            "type": batch.trigger.value,
            "now": now,
            "events": [call.event_id for call, _ in stored],
            "customers": [call.customer_id for call, _ in stored],
            "occurred": [call.occurred_at for call, _ in stored],
            "facts": [facts for _, facts in stored],
        },
    )
    if not payouts:
        return
    await session.execute(
        _STORE_PAYOUTS,
        {
            "t": batch.tenant_id,
            "now": now,
            "ids": [uuid.uuid4() for _ in payouts],
            "rules": [p.rule.id for p in payouts],
            "versions": [p.rule.version for p in payouts],
            "events": [p.call.event_id for p in payouts],
            "customers": [p.call.customer_id for p in payouts],
            "occurred": [p.call.occurred_at for p in payouts],
            "points": [p.points for p in payouts],
            "entries": [p.entry_id for p in payouts],
            "offers": [p.offer_id for p in payouts],
            "grants": [p.grant_id for p in payouts],
            "purchases": [p.purchase_id for p in payouts],
        },
    )


async def _grant_coupons(
    session: AsyncSession, tenant_id: uuid.UUID, payouts: list[_Payout]
) -> None:
    """``coupon.granted`` of each coupon payout, in one outbox statement."""
    granted = [
        (
            CouponGranted(
                grant_id=p.grant_id,
                customer_id=p.call.customer_id,
                offer_id=p.offer_id,
                source=f"rule:{p.rule.id}:v{p.rule.version}",
                source_event_id=p.call.event_id,
            ),
            str(p.call.customer_id),
        )
        for p in payouts
        if p.grant_id is not None and p.offer_id is not None
    ]
    if granted:
        await record_events(session, granted, tenant_id=tenant_id)
