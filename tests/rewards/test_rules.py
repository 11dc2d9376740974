"""Rules on real PostgreSQL: events delivered through rewards' handlers (and inbox) pay them
once, within caps and budgets, through the ledger; dry runs, refunds, coupons, tiers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.errors import NotFound
from crm_shared.events import Envelope, Event
from rewards.accounts import service as ledger
from rewards.handlers import build_handlers
from rewards.purchases.events import PurchaseRecorded, PurchaseRefunded
from rewards.rules import service
from rewards.rules.conditions import (
    Cap,
    Conditions,
    Period,
    Reward,
    RewardKind,
    RuleDefinition,
    Trigger,
)
from rewards.rules.handlers import InteractionRecorded, SegmentChanged
from rewards.rules.models import Rule
from rewards.settings import RewardsSettings
from rewards.tiers import service as tiers
from rewards.tiers.models import TierBasis
from tests.rewards.offer_support import published_offer
from tests.support.delivery import deliver, envelope_of, now

HANDLERS = build_handlers(RewardsSettings(welcome_points=100))


def review_rule(**changes: Any) -> RuleDefinition:
    base: dict[str, Any] = {
        "name": "Reviews",
        "trigger": Trigger.INTERACTION_RECORDED,
        "conditions": Conditions(interaction_kinds=["review"]),
        "reward": Reward(kind=RewardKind.POINTS, points=50),
    }
    return RuleDefinition(**{**base, **changes})


def interaction(customer_id: uuid.UUID, kind: str = "review", **changes: Any) -> Event:
    data: dict[str, Any] = {
        "interaction_id": uuid.uuid4(),
        "customer_id": customer_id,
        "channel": "x",
        "kind": kind,
        "sentiment": 0.8,
        "sentiment_label": "positive",
        "occurred_at": now(),
        **changes,
    }
    return InteractionRecorded(**data)


async def make_rule(db: Database, tenant: uuid.UUID, definition: RuleDefinition) -> Rule:
    async with db.session() as session, session.begin():
        rule, _ = await service.create_rule(
            session=session, tenant_id=tenant, definition=definition, actor="staff:test"
        )
    return rule


async def send(db: Database, tenant: uuid.UUID, event: Event) -> Envelope:
    envelope = envelope_of(event, tenant_id=tenant)
    await deliver(db, HANDLERS, envelope)
    return envelope


async def balance(db: Database, tenant: uuid.UUID, customer: uuid.UUID) -> int:
    async with db.session() as session:
        found = await ledger.get_balances(
            session=session, tenant_id=tenant, customer_ids=[customer]
        )
    return found.get(customer, 0)


async def payouts_of(db: Database, rule: Rule) -> list[tuple[int, int]]:
    """(version, points) of the rule's payouts, oldest first."""
    async with db.session() as session:
        rows = await service.payouts(session, tenant_id=rule.tenant_id, rule_id=rule.id, limit=500)
    return [(p.version, p.points) for p in reversed(rows)]


async def published(db: Database, tenant: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT envelope->'data' FROM rewards.outbox WHERE type = :type"
                " AND envelope->>'tenantid' = :t ORDER BY seq"
            ),
            {"type": event_type, "t": str(tenant)},
        )
    return [data for (data,) in rows.all()]


async def test_a_review_pays_the_review_rule_once_even_when_delivered_twice(
    ledger_db: Database,
) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    rule = await make_rule(ledger_db, tenant, review_rule())
    envelope = envelope_of(interaction(customer), tenant_id=tenant)

    await deliver(ledger_db, HANDLERS, envelope)
    await deliver(ledger_db, HANDLERS, envelope)
    await send(ledger_db, tenant, interaction(customer, kind="comment"))

    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    assert await balance(ledger_db, tenant, customer) == 50
    async with ledger_db.session() as session:
        assert await ledger.check_ledger(session, tenant) == []


async def test_the_same_event_paid_again_directly_pays_nothing_more(ledger_db: Database) -> None:
    # Beyond the inbox: the payout's own key (event, rule) refuses a second payout.
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    rule = await make_rule(ledger_db, tenant, review_rule())
    envelope = await send(ledger_db, tenant, interaction(customer))
    async with ledger_db.session() as session, session.begin():
        await ledger.open_account(session=session, tenant_id=tenant, customer_id=customer)
        facts = await service.record_trigger(
            session,
            tenant_id=tenant,
            event_id=envelope.id,
            trigger=Trigger.INTERACTION_RECORDED,
            customer_id=customer,
            occurred_at=now(),
        )
        await service.pay(session, tenant_id=tenant, event_id=envelope.id, facts=facts)
    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    assert await balance(ledger_db, tenant, customer) == 50


async def test_caps_and_budget_hold_under_fifty_concurrent_events(ledger_db: Database) -> None:
    tenant = uuid.uuid4()
    capped = await make_rule(
        ledger_db, tenant, review_rule(name="Daily", caps=[Cap(period=Period.DAY, count=3)])
    )
    budgeted = await make_rule(
        ledger_db,
        tenant,
        review_rule(
            name="Budget",
            conditions=Conditions(interaction_kinds=["comment"]),
            reward=Reward(kind=RewardKind.POINTS, points=10),
            budget_points=70,
        ),
    )
    one = uuid.uuid4()
    many = [uuid.uuid4() for _ in range(50)]

    results = await asyncio.gather(
        *(send(ledger_db, tenant, interaction(one)) for _ in range(50)),
        *(send(ledger_db, tenant, interaction(c, kind="comment")) for c in many),
        return_exceptions=True,
    )

    assert not [r for r in results if isinstance(r, BaseException)]
    assert await payouts_of(ledger_db, capped) == [(1, 50)] * 3
    assert await balance(ledger_db, tenant, one) == 150
    assert await payouts_of(ledger_db, budgeted) == [(1, 10)] * 7
    async with ledger_db.session() as session:
        rule = await service.get_rule(session, tenant_id=tenant, rule_id=budgeted.id)
        assert rule is not None and (rule.paid_points, rule.paid_count) == (70, 7)
        balances = await ledger.get_balances(session=session, tenant_id=tenant, customer_ids=many)
        assert sum(balances.values()) == 70
        assert await ledger.check_ledger(session, tenant) == []


async def test_a_budget_given_later_counts_what_the_rule_paid_before_it(
    ledger_db: Database,
) -> None:
    """A rule without a budget keeps no running totals (its payouts do not queue on its row);
    its totals are its payouts, and a budget given by a later version counts them."""
    tenant = uuid.uuid4()
    rule = await make_rule(
        ledger_db, tenant, review_rule(reward=Reward(kind=RewardKind.POINTS, points=10))
    )
    customers = [uuid.uuid4() for _ in range(20)]
    results = await asyncio.gather(
        *(send(ledger_db, tenant, interaction(c)) for c in customers), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    async with ledger_db.session() as session:
        assert await service.paid_totals(session, tenant_id=tenant, rule_ids=[rule.id]) == {
            rule.id: (200, 20)
        }

    # 200 of a budget of 250 are spent already: five more payouts of 10, then no more.
    async with ledger_db.session() as session, session.begin():
        updated, _ = await service.update_rule(
            session=session,
            tenant_id=tenant,
            rule_id=rule.id,
            definition=review_rule(
                reward=Reward(kind=RewardKind.POINTS, points=10), budget_points=250
            ),
            actor="staff:test",
        )
    assert (updated.paid_points, updated.paid_count) == (200, 20)
    later = [uuid.uuid4() for _ in range(10)]
    results = await asyncio.gather(
        *(send(ledger_db, tenant, interaction(c)) for c in later), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(await payouts_of(ledger_db, rule)) == [(1, 10)] * 20 + [(2, 10)] * 5
    async with ledger_db.session() as session:
        assert await service.paid_totals(session, tenant_id=tenant, rule_ids=[rule.id]) == {
            rule.id: (250, 25)
        }
        assert await ledger.check_ledger(session, tenant) == []


async def test_a_new_rule_version_does_not_alter_past_payouts(ledger_db: Database) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    rule = await make_rule(ledger_db, tenant, review_rule())
    await send(ledger_db, tenant, interaction(customer))
    async with ledger_db.session() as session, session.begin():
        updated, version = await service.update_rule(
            session=session,
            tenant_id=tenant,
            rule_id=rule.id,
            definition=review_rule(reward=Reward(kind=RewardKind.POINTS, points=80)),
            actor="staff:test",
        )
    assert (updated.version, version.version) == (2, 2)

    await send(ledger_db, tenant, interaction(customer))

    assert await payouts_of(ledger_db, rule) == [(1, 50), (2, 80)]
    assert await balance(ledger_db, tenant, customer) == 130
    async with ledger_db.session() as session:
        found = await service.versions(session, tenant_id=tenant, rule_ids=[rule.id])
    assert [service.definition_of(v).reward.points for v in found[rule.id]] == [80, 50]


async def test_a_dry_run_pays_nothing_and_matches_what_the_rule_then_pays(
    ledger_db: Database,
) -> None:
    tenant = uuid.uuid4()
    customers = [uuid.uuid4() for _ in range(3)]
    yesterday = now() - timedelta(days=1)
    # Events before the rule exists: stored, nothing paid.
    for n, customer in enumerate(customers):
        for _ in range(n + 1):
            await send(ledger_db, tenant, interaction(customer, occurred_at=yesterday))
        await send(ledger_db, tenant, interaction(customer, sentiment=-0.5, occurred_at=yesterday))
    draft = review_rule(
        conditions=Conditions(interaction_kinds=["review"], sentiment_min=0.0),
        caps=[Cap(period=Period.DAY, count=2)],
    )

    async with ledger_db.session() as session:
        result = await service.dry_run(
            session,
            tenant_id=tenant,
            definition=draft,
            since=yesterday - timedelta(hours=1),
            until=now(),
        )

    assert (result.events, result.matched, result.payouts, result.points) == (9, 6, 5, 250)
    assert result.capped == 1
    assert [(t.customer_id, t.points) for t in result.top_customers] == sorted(
        [(customers[2], 100), (customers[1], 100), (customers[0], 50)],
        key=lambda t: (-t[1], str(t[0])),
    )
    assert [await balance(ledger_db, tenant, c) for c in customers] == [0, 0, 0]

    # The same events again, today, with the rule in place: it pays what the dry run said.
    rule = await make_rule(ledger_db, tenant, draft)
    for n, customer in enumerate(customers):
        for _ in range(n + 1):
            await send(ledger_db, tenant, interaction(customer))
        await send(ledger_db, tenant, interaction(customer, sentiment=-0.5))
    paid = await payouts_of(ledger_db, rule)
    assert (len(paid), sum(points for _, points in paid)) == (result.payouts, result.points)
    assert [await balance(ledger_db, tenant, c) for c in customers] == [50, 100, 100]


def purchase(customer: uuid.UUID, purchase_id: uuid.UUID, amount_cents: int) -> Event:
    return PurchaseRecorded(
        purchase_id=purchase_id,
        customer_id=customer,
        order_id=f"order-{purchase_id}",
        amount_cents=amount_cents,
        currency="EUR",
        kind="purchase",
        occurred_at=now(),
    )


def refund(customer: uuid.UUID, purchase_id: uuid.UUID, amount: int, original: int) -> Event:
    return PurchaseRefunded(
        purchase_id=purchase_id,
        refund_id=uuid.uuid4(),
        customer_id=customer,
        amount_cents=amount,
        purchase_amount_cents=original,
    )


async def test_a_refund_reverses_the_purchase_points_in_proportion(ledger_db: Database) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    await make_rule(
        ledger_db,
        tenant,
        RuleDefinition(
            name="Points per euro",
            trigger=Trigger.PURCHASE_RECORDED,
            reward=Reward(kind=RewardKind.POINTS_PER_UNIT, points=1),
        ),
    )
    full, partial = uuid.uuid4(), uuid.uuid4()
    await send(ledger_db, tenant, purchase(customer, full, 12_000))
    await send(ledger_db, tenant, purchase(customer, partial, 10_000))
    assert await balance(ledger_db, tenant, customer) == 220

    refunded = envelope_of(refund(customer, full, 12_000, 12_000), tenant_id=tenant)
    await deliver(ledger_db, HANDLERS, refunded)
    await deliver(ledger_db, HANDLERS, refunded)  # a redelivery takes nothing more
    assert await balance(ledger_db, tenant, customer) == 100

    await send(ledger_db, tenant, refund(customer, partial, 2_500, 10_000))
    assert await balance(ledger_db, tenant, customer) == 75
    await send(ledger_db, tenant, refund(customer, partial, 7_500, 10_000))
    assert await balance(ledger_db, tenant, customer) == 0

    async with ledger_db.session() as session:
        kinds = await session.execute(
            text(
                "SELECT kind FROM rewards.journal_entries WHERE tenant_id = :t"
                " AND idempotency_key LIKE 'refund:%' ORDER BY created_at"
            ),
            {"t": tenant},
        )
        # The full refund reverses the entry; the partial ones adjust.
        assert [k for (k,) in kinds.all()] == ["reversal", "adjustment", "adjustment"]
        assert await ledger.check_ledger(session, tenant) == []


async def test_a_coupon_reward_publishes_coupon_granted(ledger_db: Database) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    offer = (await published_offer(ledger_db, tenant)).id
    rule = await make_rule(
        ledger_db, tenant, review_rule(reward=Reward(kind=RewardKind.COUPON, offer_id=offer))
    )
    envelope = await send(ledger_db, tenant, interaction(customer))

    [granted] = await published(ledger_db, tenant, "rewards.coupon.granted.v1")
    assert granted["customer_id"] == str(customer)
    assert granted["offer_id"] == str(offer)
    assert granted["source"] == f"rule:{rule.id}:v1"
    assert granted["source_event_id"] == str(envelope.id)
    assert await balance(ledger_db, tenant, customer) == 0
    assert await payouts_of(ledger_db, rule) == [(1, 0)]


async def test_higher_priority_first_and_stop_after_me_stops_the_rest(
    ledger_db: Database,
) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    low = await make_rule(ledger_db, tenant, review_rule(name="Low", priority=1))
    high = await make_rule(ledger_db, tenant, review_rule(name="High", priority=5, stop_after=True))
    await send(ledger_db, tenant, interaction(customer))
    assert await payouts_of(ledger_db, high) == [(1, 50)]
    assert await payouts_of(ledger_db, low) == []


async def test_tier_up_and_down_publish_tier_changed_and_multiply_points(
    ledger_db: Database,
) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    async with ledger_db.session() as session, session.begin():
        gold = await tiers.define_tier(
            session=session,
            tenant_id=tenant,
            definition=tiers.TierDefinition(
                name="Gold",
                level=1,
                basis=TierBasis.POINTS,
                threshold=100,
                window_days=30,
                multiplier=Decimal(2),
                benefits=["free shipping"],
            ),
        )
    rule = await make_rule(
        ledger_db, tenant, review_rule(reward=Reward(kind=RewardKind.POINTS, points=60))
    )

    await send(ledger_db, tenant, interaction(customer))  # 60: no tier yet
    await send(ledger_db, tenant, interaction(customer))  # 120 earned: gold
    await send(ledger_db, tenant, interaction(customer))  # paid at gold: 60 x 2

    assert await payouts_of(ledger_db, rule) == [(1, 60), (1, 60), (1, 120)]
    changes = await published(ledger_db, tenant, "rewards.tier.changed.v1")
    assert changes == [
        {"customer_id": str(customer), "previous": None, "tier": "Gold", "tier_id": str(gold.id)}
    ]
    async with ledger_db.session() as session:
        standing = (await tiers.standings(session, tenant_id=tenant, customer_ids=[customer]))[
            customer
        ]
        assert standing.tier is not None and standing.tier.name == "Gold"

    # Weeks later the window has rolled past those points: the periodic job moves them down.
    assert await tiers.recompute_all(ledger_db, now=now() + timedelta(days=31)) >= 1
    changes = await published(ledger_db, tenant, "rewards.tier.changed.v1")
    assert changes[-1] == {
        "customer_id": str(customer),
        "previous": "Gold",
        "tier": None,
        "tier_id": None,
    }


async def test_a_new_tenant_gets_the_sign_up_rule_once(ledger_db: Database) -> None:
    tenant = uuid.uuid4()
    async with ledger_db.session() as session, session.begin():
        assert await service.ensure_tenant(session, tenant_id=tenant, welcome_points=100)
        assert not await service.ensure_tenant(session, tenant_id=tenant, welcome_points=100)
        [rule] = await service.list_rules(session, tenant_id=tenant, limit=10)
    assert (rule.default_key, rule.trigger) == ("signup", Trigger.CUSTOMER_REGISTERED.value)


async def test_a_refund_after_spending_takes_back_what_is_left(ledger_db: Database) -> None:
    tenant, customer, bought = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await make_rule(
        ledger_db,
        tenant,
        RuleDefinition(
            name="Points per euro",
            trigger=Trigger.PURCHASE_RECORDED,
            reward=Reward(kind=RewardKind.POINTS_PER_UNIT, points=1),
        ),
    )
    await send(ledger_db, tenant, purchase(customer, bought, 10_000))
    async with ledger_db.session() as session, session.begin():
        await ledger.spend(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=80,
            reason="coffee",
            idempotency_key="request:spend",
            actor="customer:test",
        )

    await send(ledger_db, tenant, refund(customer, bought, 10_000, 10_000))

    assert await balance(ledger_db, tenant, customer) == 0
    async with ledger_db.session() as session:
        taken = await session.execute(
            text("SELECT points, shortfall FROM rewards.payout_refunds WHERE tenant_id = :t"),
            {"t": tenant},
        )
        assert [tuple(r) for r in taken.all()] == [(20, 80)]
        assert await ledger.check_ledger(session, tenant) == []


async def test_an_engagement_tier_counts_interactions_and_a_segment_rule_reads_the_projection(
    ledger_db: Database,
) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    async with ledger_db.session() as session, session.begin():
        await tiers.define_tier(
            session=session,
            tenant_id=tenant,
            definition=tiers.TierDefinition(
                name="Regular", level=1, basis=TierBasis.ENGAGEMENT, threshold=2, window_days=7
            ),
        )
    rule = await make_rule(
        ledger_db,
        tenant,
        review_rule(name="Advocates", conditions=Conditions(segments=["advocate"])),
    )

    await send(ledger_db, tenant, interaction(customer, kind="comment"))  # not yet an advocate
    await send(ledger_db, tenant, SegmentChanged(customer_id=customer, segment="advocate"))
    await send(ledger_db, tenant, interaction(customer, kind="comment"))

    assert await payouts_of(ledger_db, rule) == [(1, 50)]
    changes = await published(ledger_db, tenant, "rewards.tier.changed.v1")
    assert [(c["previous"], c["tier"]) for c in changes] == [(None, "Regular")]


async def test_a_coupon_reward_must_name_one_of_the_tenants_offers(ledger_db: Database) -> None:
    """Another tenant's offer is no more found than a made-up one, on create and update."""
    tenant, other = uuid.uuid4(), uuid.uuid4()
    own = await make_rule(ledger_db, tenant, review_rule())
    theirs = (await published_offer(ledger_db, other)).id
    for offer in (theirs, uuid.uuid4()):
        coupon = review_rule(reward=Reward(kind=RewardKind.COUPON, offer_id=offer))
        with pytest.raises(NotFound) as refused:
            await make_rule(ledger_db, tenant, coupon)
        assert refused.value.field == "input.reward.offerId"
        async with ledger_db.session() as session, session.begin():
            with pytest.raises(NotFound):
                await service.update_rule(
                    session=session,
                    tenant_id=tenant,
                    rule_id=own.id,
                    definition=coupon,
                    actor="staff:test",
                )
    async with ledger_db.session() as session:
        count = await session.execute(
            text("SELECT count(*) FROM rewards.rules WHERE tenant_id = :t"), {"t": tenant}
        )
        assert count.scalar_one() == 1
