"""An influence score from its parts, and who counts as influencer, advocate, detractor.

Each part is scaled to 0..1 against the tenant's most influential author: PageRank by its
ratio to the largest, the counts (followers, engagement received, shares) on a log scale
(``log1p(x) / log1p(max)``, so that one viral author does not flatten everyone else). The
score is their weighted sum (capped at 1), with the weights below. Everything works on
arrays (one entry per customer) so that a tenant of any size is scored at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]

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


def _log_scaled(values: Vector, top: float) -> Vector:
    if top <= 0:
        return np.zeros_like(values)
    scaled: Vector = np.minimum(1.0, np.log1p(values) / np.log1p(top))
    return scaled


def scores(
    reach: Vector, engagement_received: Vector, amplification: Vector, page_rank: Vector, top: Parts
) -> Vector:
    """Each customer's parts scored against ``top`` (the tenant's maxima of each part), 0..1."""
    ranked = (
        np.zeros_like(page_rank)
        if top.page_rank <= 0
        else np.minimum(1.0, page_rank / top.page_rank)
    )
    total = (
        WEIGHTS["page_rank"] * ranked
        + WEIGHTS["reach"] * _log_scaled(reach, top.reach)
        + WEIGHTS["engagement_received"] * _log_scaled(engagement_received, top.engagement_received)
        + WEIGHTS["amplification"] * _log_scaled(amplification, top.amplification)
    )
    return np.round(np.minimum(1.0, total), 6).astype(np.float64)


def standings(values: Vector, sentiments: Vector, rules: Rules) -> tuple[Flags, Flags, Flags]:
    """Influencers, advocates and detractors among scores ``values`` with mean ``sentiments``
    (NaN: no analysed text, so neither advocate nor detractor). An influencer scores at least
    ``rules.min_score``; an advocate is an influencer whose mean sentiment is at least the
    advocates' threshold, a detractor one whose is at most the detractors'."""
    influencer = values >= rules.min_score
    known = ~np.isnan(sentiments)
    safe = np.where(known, sentiments, 0.0)
    advocate = influencer & known & (safe >= rules.advocate_min_sentiment)
    detractor = influencer & known & (safe <= rules.detractor_max_sentiment)
    return influencer, advocate, detractor


def score(parts: Parts, top: Parts) -> float:
    """One customer's score (see :func:`scores`)."""

    def one(value: float) -> Vector:
        return np.array([float(value)], dtype=np.float64)

    found = scores(
        one(parts.reach),
        one(parts.engagement_received),
        one(parts.amplification),
        one(parts.page_rank),
        top,
    )
    return float(found[0])


def standing(value: float, mean_sentiment: float | None, rules: Rules) -> Standing:
    """One customer's standing (see :func:`standings`)."""
    sentiment = np.array([np.nan if mean_sentiment is None else mean_sentiment])
    influencer, advocate, detractor = standings(np.array([value]), sentiment, rules)
    return Standing(value, bool(influencer[0]), bool(advocate[0]), bool(detractor[0]))
