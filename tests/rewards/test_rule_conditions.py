"""The pure logic of rules: conditions, reward arithmetic, cap periods, simulated payouts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from crm_shared.errors import BadUserInput
from rewards.rules.conditions import (
    Cap,
    Conditions,
    Facts,
    Period,
    Reward,
    RewardKind,
    RuleDefinition,
    Trigger,
    cap_allows,
    matches,
    period_bounds,
    period_start,
    reward_points,
)
from rewards.rules.service import parse_definition, simulate

AT = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # a Wednesday
CUSTOMER = uuid.uuid4()


def review_rule(**changes: Any) -> RuleDefinition:
    base: dict[str, Any] = {
        "name": "Reviews",
        "trigger": Trigger.INTERACTION_RECORDED,
        "conditions": Conditions(interaction_kinds=["review"]),
        "reward": Reward(kind=RewardKind.POINTS, points=50),
    }
    return RuleDefinition(**{**base, **changes})


def interaction(**changes: Any) -> Facts:
    base: dict[str, Any] = {
        "trigger": Trigger.INTERACTION_RECORDED,
        "customer_id": CUSTOMER,
        "occurred_at": AT,
        "channel": "x",
        "kind": "review",
        "sentiment": 0.6,
        "sentiment_label": "positive",
    }
    return Facts(**{**base, **changes})


def purchase(amount_cents: int, **changes: Any) -> Facts:
    return Facts(
        trigger=Trigger.PURCHASE_RECORDED,
        customer_id=CUSTOMER,
        occurred_at=AT,
        amount_cents=amount_cents,
        currency="EUR",
        **changes,
    )


def test_a_review_matches_the_review_rule_and_a_comment_does_not() -> None:
    assert matches(review_rule(), interaction())
    assert not matches(review_rule(), interaction(kind="comment"))


def test_another_trigger_never_matches() -> None:
    assert not matches(review_rule(), purchase(1000))


@pytest.mark.parametrize(
    ("conditions", "facts", "expected"),
    [
        (Conditions(channels=["x", "instagram"]), {"channel": "instagram"}, True),
        (Conditions(channels=["x"]), {"channel": "facebook"}, False),
        (Conditions(sentiment_min=0.5), {"sentiment": 0.5}, True),
        (Conditions(sentiment_min=0.5), {"sentiment": 0.49}, False),
        (Conditions(sentiment_max=0.0), {"sentiment": 0.6}, False),
        # No sentiment known: a sentiment range cannot hold.
        (Conditions(sentiment_min=-1), {"sentiment": None}, False),
        (Conditions(sentiment_labels=["positive"]), {"sentiment_label": "negative"}, False),
        (Conditions(segments=["vip"]), {"segment": "vip"}, True),
        (Conditions(segments=["vip"]), {"segment": None}, False),
        (Conditions(consent_purposes=["marketing"]), {"consents": frozenset({"marketing"})}, True),
        (
            Conditions(consent_purposes=["marketing", "profiling"]),
            {"consents": frozenset({"marketing"})},
            False,
        ),
        (Conditions(first_time=True), {"first_time": True}, True),
        (Conditions(first_time=True), {"first_time": False}, False),
    ],
)
def test_each_condition_holds_only_for_its_values(
    conditions: Conditions, facts: dict[str, Any], expected: bool
) -> None:
    rule = review_rule(conditions=conditions)
    assert matches(rule, interaction(**facts)) is expected


def test_a_tier_condition_needs_one_of_the_tiers() -> None:
    gold, silver = uuid.uuid4(), uuid.uuid4()
    rule = review_rule(conditions=Conditions(tier_ids=[gold]))
    assert matches(rule, interaction(tier_id=gold))
    assert not matches(rule, interaction(tier_id=silver))
    assert not matches(rule, interaction(tier_id=None))


def test_amount_range_is_inclusive_on_both_ends() -> None:
    rule = RuleDefinition(
        name="Big baskets",
        trigger=Trigger.PURCHASE_RECORDED,
        conditions=Conditions(amount_min_cents=5000, amount_max_cents=10000),
        reward=Reward(kind=RewardKind.POINTS, points=10),
    )
    assert [matches(rule, purchase(c)) for c in (4999, 5000, 10000, 10001)] == [
        False,
        True,
        True,
        False,
    ]


def test_the_time_window_includes_its_start_and_excludes_its_end() -> None:
    rule = review_rule(starts_at=AT, ends_at=AT + timedelta(days=1))
    assert matches(rule, interaction(occurred_at=AT))
    assert not matches(rule, interaction(occurred_at=AT - timedelta(seconds=1)))
    assert not matches(rule, interaction(occurred_at=AT + timedelta(days=1)))


def test_points_per_currency_unit_count_whole_units_times_the_tier_multiplier() -> None:
    reward = Reward(kind=RewardKind.POINTS_PER_UNIT, points=2)
    assert reward_points(reward, purchase(12_345)) == 246
    assert reward_points(reward, purchase(99)) == 0
    assert reward_points(reward, purchase(10_000, tier_multiplier=1.5)) == 300
    fixed = Reward(kind=RewardKind.POINTS, points=25)
    assert reward_points(fixed, interaction(tier_multiplier=1.25)) == 31  # rounded down
    plain = Reward(kind=RewardKind.POINTS, points=25, tier_multiplier=False)
    assert reward_points(plain, interaction(tier_multiplier=2.0)) == 25


def test_a_coupon_reward_pays_no_points() -> None:
    coupon = Reward(kind=RewardKind.COUPON, offer_id=uuid.uuid4())
    assert reward_points(coupon, interaction()) == 0


def test_periods_start_at_midnight_monday_and_the_first_of_the_month_utc() -> None:
    assert period_start(Period.DAY, AT) == datetime(2026, 12, 2, tzinfo=UTC)
    assert period_start(Period.WEEK, AT) == datetime(2026, 11, 30, tzinfo=UTC)
    assert period_start(Period.MONTH, AT) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_start(Period.EVER, AT) is None
    assert period_bounds(Period.MONTH, AT) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds(Period.WEEK, AT) == (
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )


def test_a_cap_counts_only_payouts_in_the_same_period() -> None:
    daily = [Cap(period=Period.DAY, count=2)]
    yesterday = AT - timedelta(days=1)
    assert cap_allows(daily, [yesterday, yesterday, AT], AT)
    assert not cap_allows(daily, [AT - timedelta(hours=1), AT], AT)
    ever = [Cap(period=Period.EVER, count=1)]
    assert not cap_allows(ever, [AT - timedelta(days=900)], AT)
    assert cap_allows(ever, [], AT)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": AT, "starts_at": AT + timedelta(hours=1)}, "endsAt"),
        ({"reward": {"kind": "points", "points": -5}}, "points"),
        ({"reward": {"kind": "coupon"}}, "offerId"),
        ({"reward": {"kind": "points_per_unit", "points": 1}}, "purchase trigger"),
        ({"caps": [{"period": "day", "count": 1}, {"period": "day", "count": 2}]}, "one cap"),
        ({"trigger": "engagement.nothing.v1"}, "trigger"),
        ({"conditions": {"sentiment_min": 0.5, "sentiment_max": 0.1}}, "sentimentMin"),
    ],
)
def test_inconsistent_definitions_are_refused(changes: dict[str, Any], field: str) -> None:
    data: dict[str, Any] = {
        "name": "Reviews",
        "trigger": Trigger.INTERACTION_RECORDED.value,
        "reward": {"kind": "points", "points": 50},
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        RuleDefinition.model_validate(data)
    assert field in str(refused.value)


def test_conditions_on_facts_the_trigger_lacks_are_named() -> None:
    rule = RuleDefinition(
        name="Votes",
        trigger=Trigger.POLL_VOTED,
        conditions=Conditions(channels=["x"]),
        reward=Reward(kind=RewardKind.POINTS, points=5),
    )
    assert rule.errors_of_facts() == [("channels", f"does not apply to {Trigger.POLL_VOTED}")]


def test_a_simulation_applies_caps_and_budget_and_ranks_customers() -> None:
    other = uuid.uuid4()
    rule = review_rule(caps=[Cap(period=Period.DAY, count=1)], budget_points=150)
    events = [
        interaction(),
        interaction(occurred_at=AT + timedelta(hours=1)),  # capped: same day
        interaction(occurred_at=AT + timedelta(days=1)),
        interaction(customer_id=other, kind="comment"),  # no match
        interaction(customer_id=other),
        interaction(customer_id=other, occurred_at=AT + timedelta(days=2)),  # over budget
    ]
    result = simulate(rule, events)
    assert (result.events, result.matched, result.payouts, result.points) == (6, 5, 3, 150)
    assert (result.capped, result.over_budget) == (1, 1)
    assert [(t.customer_id, t.payouts, t.points) for t in result.top_customers] == [
        (CUSTOMER, 2, 100),
        (other, 1, 50),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2026-12-01T00:00:00Z", "starts_at": "2026-12-02T00:00:00Z"}, "input.endsAt"),
        ({"reward": {"kind": "points", "points": 0}}, "input.reward.points"),
        ({"reward": {"kind": "coupon"}}, "input.reward.offerId"),
        ({"caps": [{"period": "week", "count": 0}]}, "input.caps.0.count"),
        ({"conditions": {"amount_min_cents": 10}}, "input.conditions.amountMinCents"),
    ],
)
def test_parsed_definitions_name_the_offending_field(changes: dict[str, Any], field: str) -> None:
    data: dict[str, Any] = {
        "name": "Reviews",
        "trigger": Trigger.INTERACTION_RECORDED.value,
        "reward": {"kind": "points", "points": 50},
        **changes,
    }
    with pytest.raises(BadUserInput) as refused:
        parse_definition(data)
    assert refused.value.field == field


async def test_first_time_is_the_customers_first_event_of_that_type(rewards_db: Any) -> None:
    """``first_time`` is true for a customer's first event of a type only: a second event of
    the type is not, an event of another type is, and a replayed event keeps its facts."""
    from rewards.rules.conditions import Trigger
    from rewards.rules.service import record_trigger

    tenant, customer = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 5, 1, tzinfo=UTC)

    async def record(event_id: uuid.UUID, trigger: Trigger) -> bool:
        async with rewards_db.session() as session, session.begin():
            facts = await record_trigger(
                session,
                tenant_id=tenant,
                event_id=event_id,
                trigger=trigger,
                customer_id=customer,
                occurred_at=at,
            )
        return bool(facts.first_time)

    first = uuid.uuid4()
    assert await record(first, Trigger.INTERACTION_RECORDED) is True
    assert await record(uuid.uuid4(), Trigger.INTERACTION_RECORDED) is False
    assert await record(uuid.uuid4(), Trigger.POLL_VOTED) is True
    # The first event again (a redelivery) is answered from what was stored.
    assert await record(first, Trigger.INTERACTION_RECORDED) is True
