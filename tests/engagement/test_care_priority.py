"""Case priority, case kinds and SLA targets: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engagement.care.priority import case_kind, case_priority, due_times, sla_target
from engagement.settings import EngagementSettings

DEFAULTS = EngagementSettings().case_sla_minutes


def test_a_calm_question_from_an_unknown_author_is_low() -> None:
    priority = case_priority(
        kind="question", sentiment=0.0, followers=None, customer_value_cents=None
    )
    assert (priority.level, priority.score, priority.rank) == ("low", 10.0, 3)


def test_an_angry_complaint_outranks_a_mild_one() -> None:
    mild = case_priority(kind="complaint", sentiment=-0.1, followers=100, customer_value_cents=0)
    angry = case_priority(kind="complaint", sentiment=-0.9, followers=100, customer_value_cents=0)
    assert angry.score > mild.score
    assert angry.rank < mild.rank


def test_positive_or_unanalyzed_sentiment_adds_nothing() -> None:
    base = case_priority(kind="complaint", sentiment=None, followers=0, customer_value_cents=0)
    happy = case_priority(kind="complaint", sentiment=0.8, followers=0, customer_value_cents=0)
    assert base.score == happy.score == 15.0


@pytest.mark.parametrize(
    ("followers", "expected"), [(0, 0.0), (10, 4.34), (1_000, 12.5), (10_000_000, 25.0)]
)
def test_reach_counts_on_a_log_scale_up_to_a_million_followers(
    followers: int, expected: float
) -> None:
    priority = case_priority(
        kind="question", sentiment=None, followers=followers, customer_value_cents=None
    )
    assert priority.score == pytest.approx(10.0 + expected, abs=0.01)


def test_customer_value_raises_priority_and_caps_at_fifteen() -> None:
    none = case_priority(kind="question", sentiment=None, followers=None, customer_value_cents=0)
    some = case_priority(kind="question", sentiment=None, followers=None, customer_value_cents=1000)
    huge = case_priority(
        kind="question", sentiment=None, followers=None, customer_value_cents=10**9
    )
    assert none.score < some.score < huge.score == 25.0


def test_an_influencer_furious_and_valuable_is_urgent() -> None:
    priority = case_priority(
        kind="complaint", sentiment=-1.0, followers=2_000_000, customer_value_cents=5_000_000
    )
    assert (priority.level, priority.score) == ("urgent", 95.0)


def test_levels_follow_the_score_thresholds() -> None:
    high = case_priority(
        kind="complaint", sentiment=-0.7, followers=None, customer_value_cents=None
    )
    normal = case_priority(
        kind="complaint", sentiment=-0.2, followers=None, customer_value_cents=None
    )
    assert (high.level, high.score) == ("high", 43.0)
    assert (normal.level, normal.score) == ("normal", 23.0)


def test_complaints_and_questions_open_cases_whatever_their_sentiment() -> None:
    for kind in ("complaint", "question"):
        assert (
            case_kind(
                kind=kind,
                sentiment=0.9,
                brand_mentioned=False,
                from_negative_mentions=False,
                mention_max_sentiment=-0.5,
            )
            == kind
        )


def test_only_negative_enough_mentions_of_the_brand_open_cases() -> None:
    def kind(
        kind: str, sentiment: float | None, mentioned: bool, enabled: bool = True
    ) -> str | None:
        return case_kind(
            kind=kind,
            sentiment=sentiment,
            brand_mentioned=mentioned,
            from_negative_mentions=enabled,
            mention_max_sentiment=-0.5,
        )

    assert kind("post", -0.6, True) == "mention"
    assert kind("mention", -0.5, False) == "mention"
    assert kind("post", -0.4, True) is None
    assert kind("post", -0.9, False) is None
    assert kind("post", None, True) is None
    assert kind("share", -0.9, True) is None
    assert kind("post", -0.9, True, enabled=False) is None


def test_sla_targets_come_from_the_defaults_unless_the_tenant_overrides_them() -> None:
    default = sla_target("urgent", defaults=DEFAULTS, overrides={}, tenant_id="t1")
    assert default.first_response == timedelta(hours=1)
    assert default.resolution == timedelta(hours=8)
    overrides = {"t1": {"urgent": {"first_response": 15}}}
    mine = sla_target("urgent", defaults=DEFAULTS, overrides=overrides, tenant_id="t1")
    other = sla_target("urgent", defaults=DEFAULTS, overrides=overrides, tenant_id="t2")
    assert (mine.first_response, mine.resolution) == (timedelta(minutes=15), timedelta(hours=8))
    assert other == default


def test_due_times_count_from_the_opening() -> None:
    opened = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    target = sla_target("low", defaults=DEFAULTS, overrides={}, tenant_id="t")
    assert due_times(opened, target) == (
        datetime(2026, 1, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 1, 4, 9, 0, tzinfo=UTC),
    )
