"""An influence score from its parts, and who counts as influencer, advocate, detractor.

Each part is scaled to 0..1 against the tenant's most influential author: PageRank by its
ratio to the largest, the counts (followers, engagement received, shares) on a log scale
(``log1p(x) / log1p(max)``, so that one viral author does not flatten everyone else). The
score is their weighted sum (capped at 1), with the weights below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WEIGHTS = {"page_rank": 0.4, "reach": 0.3, "engagement_received": 0.2, "amplification": 0.1}


@dataclass(frozen=True)
class Parts:
    """The raw parts of someone's influence (a customer's: the sum over their profiles)."""

    reach: int
    engagement_received: int
    amplification: int
    page_rank: float


@dataclass(frozen=True)
class Rules:
    """From which score one is an influencer, and the mean sentiment of advocates and
    detractors."""

    min_score: float
    advocate_min_sentiment: float
    detractor_max_sentiment: float


@dataclass(frozen=True)
class Standing:
    """A customer's score and what it makes them."""

    score: float
    influencer: bool
    advocate: bool
    detractor: bool


def _log_scaled(value: float, top: float) -> float:
    return 0.0 if top <= 0 else min(1.0, math.log1p(value) / math.log1p(top))


def score(parts: Parts, top: Parts) -> float:
    """``parts`` scored against ``top`` (the tenant's maxima of each part), 0..1."""
    scaled = {
        "page_rank": 0.0 if top.page_rank <= 0 else min(1.0, parts.page_rank / top.page_rank),
        "reach": _log_scaled(parts.reach, top.reach),
        "engagement_received": _log_scaled(parts.engagement_received, top.engagement_received),
        "amplification": _log_scaled(parts.amplification, top.amplification),
    }
    return round(min(1.0, sum(WEIGHTS[k] * v for k, v in scaled.items())), 6)


def standing(value: float, mean_sentiment: float | None, rules: Rules) -> Standing:
    """An influencer scores at least ``rules.min_score``; an advocate is an influencer whose
    mean sentiment is at least the advocates' threshold, a detractor one at most the
    detractors' (no analysed text: neither)."""
    influencer = value >= rules.min_score
    if mean_sentiment is None:
        return Standing(score=value, influencer=influencer, advocate=False, detractor=False)
    return Standing(
        score=value,
        influencer=influencer,
        advocate=influencer and mean_sentiment >= rules.advocate_min_sentiment,
        detractor=influencer and mean_sentiment <= rules.detractor_max_sentiment,
    )
