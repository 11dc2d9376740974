"""Pure logic of listening analytics: spike detection, segment classification, PageRank and
influence scoring."""

from __future__ import annotations

from datetime import UTC, datetime

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_shared.errors import BadUserInput
from engagement.influence.pagerank import pagerank
from engagement.influence.scoring import Parts, Rules, score, standing
from engagement.segments.classify import Activity, Thresholds, classify
from engagement.trends.service import bucket, check_range, normalize_topic, topics
from engagement.trends.spikes import detect_spike


def test_an_hour_far_above_a_steady_baseline_is_a_spike() -> None:
    spike = detect_spike(40, [5, 6, 4, 5, 5, 6, 4, 5], k=3, min_volume=10)
    assert spike is not None
    assert spike.volume == 40
    assert spike.baseline == 5.0
    assert 5.0 < spike.threshold < 40


def test_an_hour_within_the_baselines_spread_is_no_spike() -> None:
    assert detect_spike(30, [5, 50, 5, 50, 5, 50], k=3, min_volume=10) is None


def test_a_small_volume_is_no_spike_however_quiet_the_baseline() -> None:
    assert detect_spike(9, [0] * 48, k=3, min_volume=10) is None


def test_the_first_busy_hour_after_silence_is_a_spike() -> None:
    spike = detect_spike(10, [0] * 48, k=3, min_volume=10)
    assert spike is not None and spike.threshold == 0.0


def test_without_history_there_is_no_spike() -> None:
    assert detect_spike(100, [], k=3, min_volume=10) is None


def test_a_volume_exactly_at_the_threshold_is_no_spike() -> None:
    # mean 2, population stddev 1: threshold 2 + 3 * 1 = 5
    assert detect_spike(5, [1, 3], k=3, min_volume=1) is None
    assert detect_spike(6, [1, 3], k=3, min_volume=1) is not None


LIMITS = Thresholds(window_days=30, creator_min_originals=3, occasional_min_contributions=2)


@pytest.mark.parametrize(
    ("activity", "segment"),
    [
        (Activity(originals=3, items=3, ever=10), "creator"),
        (Activity(originals=2, items=2, ever=2), "occasional"),
        (Activity(originals=0, items=5, ever=5), "occasional"),
        (Activity(originals=0, items=1, ever=1), "observer"),
        (Activity(originals=0, items=0, ever=0), "observer"),
        (Activity(originals=0, items=0, ever=7), "inactive"),
    ],
)
def test_segments_follow_the_thresholds(activity: Activity, segment: str) -> None:
    assert classify(activity, LIMITS) == segment


def test_hashtags_are_topics_lower_cased_once_each() -> None:
    assert topics("Loving the #Launch! #launch again, #new_sound and a#not or ##double") == [
        "#launch",
        "#new_sound",
    ]
    assert topics(None) == []


def test_a_topic_argument_is_normalized_or_refused() -> None:
    assert normalize_topic("Launch") == "#launch"
    assert normalize_topic("#Launch") == "#launch"
    with pytest.raises(BadUserInput) as refused:
        normalize_topic("two words")
    assert refused.value.field == "topic"


def test_buckets_are_utc_hours_and_days() -> None:
    at = datetime(2026, 3, 1, 23, 45, tzinfo=UTC)
    assert bucket(at, "hour") == datetime(2026, 3, 1, 23, tzinfo=UTC)
    assert bucket(at, "day") == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_reversed_or_too_long_range_is_refused() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(BadUserInput) as reversed_:
        check_range(late, early, "hour")
    assert reversed_.value.field == "from"
    with pytest.raises(BadUserInput) as too_long:
        check_range(early, late, "hour")
    assert too_long.value.field == "to"
    assert len(check_range(early, late, "day")) == 60
    with pytest.raises(BadUserInput) as naive:
        check_range(early, datetime(2026, 1, 2), "day")
    assert naive.value.field == "to"


def _edges(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([s for s, _ in pairs], dtype=np.int64),
        np.array([t for _, t in pairs], dtype=np.int64),
    )


def test_pagerank_of_a_cycle_is_uniform() -> None:
    ranks = pagerank(3, *_edges([(0, 1), (1, 2), (2, 0)]))
    assert ranks == pytest.approx([1 / 3] * 3)


def test_pagerank_of_a_star_puts_the_centre_first() -> None:
    # Three leaves point at the centre, which points nowhere (dangling, so it spreads its
    # score evenly). With d = 0.85, n = 4: x_l = 0.0375 + 0.2125 x_c and
    # x_c = 0.0375 + 2.55 x_l + 0.2125 x_c, so x_c = 0.133125 / 0.245625 and x_l follows.
    ranks = pagerank(4, *_edges([(1, 0), (2, 0), (3, 0)]))
    centre = 0.133125 / 0.245625
    assert ranks[0] == pytest.approx(centre, abs=1e-9)
    assert ranks[1:] == pytest.approx([0.0375 + 0.2125 * centre] * 3, abs=1e-9)


def test_pagerank_matches_networkx_on_a_weighted_random_graph() -> None:
    rng = np.random.default_rng(7)
    n, m = 60, 300
    sources, targets = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = sources != targets
    sources, targets = sources[keep], targets[keep]
    weights = rng.integers(1, 5, len(sources)).astype(np.float64)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    for s, t, w in zip(sources, targets, weights, strict=True):
        previous = graph.get_edge_data(int(s), int(t), {"weight": 0.0})["weight"]
        graph.add_edge(int(s), int(t), weight=previous + w)
    expected = nx.pagerank(graph, alpha=0.85, tol=1e-12, max_iter=1000)
    ranks = pagerank(n, sources, targets, weights)
    assert ranks == pytest.approx([expected[i] for i in range(n)], abs=1e-8)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=120),
        )
    )
)
def test_pagerank_scores_are_a_distribution_above_the_teleport_floor(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    n, pairs = graph
    ranks = pagerank(n, *_edges(pairs), damping=0.85)
    assert ranks.sum() == pytest.approx(1.0)
    assert (ranks >= 0.15 / n - 1e-12).all()


def test_the_score_is_relative_to_the_tenants_top_author() -> None:
    top = Parts(reach=10_000, engagement_received=500, amplification=100, page_rank=0.2)
    assert score(top, top) == pytest.approx(1.0)
    assert score(Parts(0, 0, 0, 0.0), top) == 0.0
    half = score(Parts(reach=100, engagement_received=22, amplification=10, page_rank=0.1), top)
    assert 0.3 < half < 0.7


RULES = Rules(min_score=0.5, advocate_min_sentiment=0.3, detractor_max_sentiment=-0.3)


def test_advocates_and_detractors_are_influencers_with_a_clear_sentiment() -> None:
    assert standing(0.8, 0.6, RULES).advocate
    assert standing(0.8, -0.5, RULES).detractor
    neutral = standing(0.8, 0.0, RULES)
    assert neutral.influencer and not neutral.advocate and not neutral.detractor
    assert not standing(0.4, 0.9, RULES).advocate
    assert not standing(0.8, None, RULES).advocate
