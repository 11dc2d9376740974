"""How urgent a case is, and when its SLA targets fall due: pure functions, no I/O.

A case's priority score (0-100) adds four parts:

- what it is: a complaint 15, a question or a negative mention 10;
- how negative it sounds: up to 40, in proportion to VADER's compound below 0 (positive or
  unanalyzed texts add nothing);
- the author's reach: up to 25, on a log scale of followers (10 followers ~4, 1,000 ~12.5,
  a million or more 25), because a complaint in front of many people costs more;
- what the customer is worth: up to 15, on a log scale of rewards' customer value (own and
  referred revenue; $1 5, $10 7.5, $100 10, $10,000 or more 15).

The level follows from the score: ``urgent`` from 60, ``high`` from 40, ``normal`` from 20,
``low`` below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

KIND_WEIGHT: Mapping[str, float] = {"complaint": 15.0, "question": 10.0, "mention": 10.0}
SENTIMENT_WEIGHT = 40.0
REACH_WEIGHT = 25.0
REACH_FULL_AT = 1_000_000  # followers
VALUE_WEIGHT = 15.0
VALUE_FULL_AT_CENTS = 1_000_000  # $10,000
LEVELS: tuple[tuple[str, float], ...] = (("urgent", 60.0), ("high", 40.0), ("normal", 20.0))
RANKS: Mapping[str, int] = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


@dataclass(frozen=True)
class Priority:
    """A case's priority: the level agents see, its rank (0 first) and the score behind it."""

    level: str
    score: float

    @property
    def rank(self) -> int:
        """0 for urgent ... 3 for low: the queue's order."""
        return RANKS[self.level]


def _log_share(value: float, full_at: float) -> float:
    """``value`` on a log scale where ``full_at`` (and above) is 1 and 0 is 0."""
    if value <= 0:
        return 0.0
    return min(1.0, math.log10(1 + value) / math.log10(1 + full_at))


def case_priority(
    *,
    kind: str,
    sentiment: float | None,
    followers: int | None,
    customer_value_cents: int | None,
) -> Priority:
    """The priority of a case of ``kind`` from its text's sentiment, reach and customer value."""
    score = KIND_WEIGHT.get(kind, 10.0)
    if sentiment is not None and sentiment < 0:
        score += SENTIMENT_WEIGHT * min(1.0, -sentiment)
    score += REACH_WEIGHT * _log_share(followers or 0, REACH_FULL_AT)
    score += VALUE_WEIGHT * _log_share(customer_value_cents or 0, VALUE_FULL_AT_CENTS)
    score = round(score, 2)
    level = next((name for name, floor in LEVELS if score >= floor), "low")
    return Priority(level=level, score=score)


def case_kind(
    *,
    kind: str,
    sentiment: float | None,
    brand_mentioned: bool,
    from_negative_mentions: bool,
    mention_max_sentiment: float,
) -> str | None:
    """The kind of case an interaction opens (complaint, question, mention), or None.

    A mention counts when it names the brand (a tracker matched, or the platform says it is a
    mention of the brand's account) and sounds negative enough; shares never open a case.
    """
    if kind in ("complaint", "question"):
        return kind
    if not from_negative_mentions or kind == "share" or sentiment is None:
        return None
    if (brand_mentioned or kind == "mention") and sentiment <= mention_max_sentiment:
        return "mention"
    return None


@dataclass(frozen=True)
class SlaTarget:
    """How long the brand has to answer a case first, and to resolve it."""

    first_response: timedelta
    resolution: timedelta


Targets = Mapping[str, Mapping[str, int]]
"""Minutes per priority level and target: ``{"urgent": {"first_response": 60, ...}, ...}``."""


def sla_target(
    priority: str, *, defaults: Targets, overrides: Mapping[str, Targets], tenant_id: str
) -> SlaTarget:
    """The SLA of a ``priority`` case in the tenant: its override, else the defaults."""
    chosen = {**defaults.get(priority, {}), **overrides.get(tenant_id, {}).get(priority, {})}
    return SlaTarget(
        first_response=timedelta(minutes=chosen["first_response"]),
        resolution=timedelta(minutes=chosen["resolution"]),
    )


def due_times(opened_at: datetime, target: SlaTarget) -> tuple[datetime, datetime]:
    """When a case opened at ``opened_at`` must have its first response and its resolution."""
    return opened_at + target.first_response, opened_at + target.resolution
