"""What a rule is made of, and the pure logic of deciding what it pays (no I/O).

A rule's definition (``RuleDefinition``) is a typed model: its trigger, conditions, reward,
caps, budget, time window and priority. An event becomes ``Facts`` (what the conditions look
at, snapshotted when rewards stored the event), and ``matches`` decides whether a definition
applies to them; ``reward_points`` and ``period_start`` are the arithmetic of payouts and caps.
Nothing here evaluates strings: every condition is a field with a fixed meaning.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_POINTS = 1_000_000
MAX_PRIORITY = 1_000
MAX_LIST = 50
MAX_NAME_LENGTH = 120


class Trigger(StrEnum):
    """The event types a rule can trigger on."""

    CUSTOMER_REGISTERED = "identity.customer.registered.v1"
    INTERACTION_RECORDED = "engagement.interaction.recorded.v1"
    POLL_VOTED = "engagement.poll.voted.v1"
    IDEA_STATUS_CHANGED = "engagement.idea.status_changed.v1"
    CONTEST_WINNER_CHOSEN = "engagement.contest.winner_chosen.v1"
    CONTENT_SHARED = "engagement.content.shared.v1"
    PURCHASE_RECORDED = "rewards.purchase.recorded.v1"


class Period(StrEnum):
    """The window a per-customer cap counts payouts in (calendar periods, UTC)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    EVER = "ever"


class RewardKind(StrEnum):
    POINTS = "points"  # a fixed number of points
    POINTS_PER_UNIT = "points_per_unit"  # points per whole currency unit of a purchase
    COUPON = "coupon"  # a coupon of an offer (issued by offers)


# The facts each trigger carries beyond the customer's context (segment, tier, consents,
# first time), which every trigger has. A condition on a fact the trigger lacks is refused.
TRIGGER_FACTS: dict[Trigger, frozenset[str]] = {
    Trigger.CUSTOMER_REGISTERED: frozenset(),
    Trigger.INTERACTION_RECORDED: frozenset({"channel", "kind", "sentiment", "sentiment_label"}),
    Trigger.POLL_VOTED: frozenset(),
    Trigger.IDEA_STATUS_CHANGED: frozenset({"status"}),
    Trigger.CONTEST_WINNER_CHOSEN: frozenset({"rank"}),
    Trigger.CONTENT_SHARED: frozenset({"channel"}),
    Trigger.PURCHASE_RECORDED: frozenset({"amount_cents", "currency"}),
}

Name = Annotated[str, Field(min_length=1, max_length=60)]
Names = Annotated[list[Name], Field(min_length=1, max_length=MAX_LIST)]


class FieldProblem(ValueError):
    """A rule about several fields broken; ``field`` names the one to fix (GraphQL spelling,
    relative to the model that checks it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Conditions(Strict):
    """All set conditions must hold (an unset one is no condition); lists mean "any of"."""

    channels: Names | None = None
    interaction_kinds: Names | None = None
    sentiment_min: Annotated[float, Field(ge=-1, le=1)] | None = None
    sentiment_max: Annotated[float, Field(ge=-1, le=1)] | None = None
    sentiment_labels: Names | None = None
    segments: Names | None = None
    tier_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_LIST)] | None = None
    # Every listed purpose must be granted by the customer (latest consent rewards has seen).
    consent_purposes: Names | None = None
    # Only the customer's first event of this trigger.
    first_time: bool = False
    amount_min_cents: Annotated[int, Field(ge=0)] | None = None
    amount_max_cents: Annotated[int, Field(ge=0)] | None = None
    currencies: Names | None = None
    idea_statuses: Names | None = None
    max_rank: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if (
            self.sentiment_min is not None
            and self.sentiment_max is not None
            and self.sentiment_min > self.sentiment_max
        ):
            raise FieldProblem("sentimentMin", "must not be above sentimentMax")
        if (
            self.amount_min_cents is not None
            and self.amount_max_cents is not None
            and self.amount_min_cents > self.amount_max_cents
        ):
            raise FieldProblem("amountMinCents", "must not be above amountMaxCents")
        return self

    def facts_used(self) -> dict[str, str]:
        """The trigger facts the set conditions look at: {condition field: fact}."""
        uses = {
            "channels": "channel",
            "interaction_kinds": "kind",
            "sentiment_min": "sentiment",
            "sentiment_max": "sentiment",
            "sentiment_labels": "sentiment_label",
            "amount_min_cents": "amount_cents",
            "amount_max_cents": "amount_cents",
            "currencies": "currency",
            "idea_statuses": "status",
            "max_rank": "rank",
        }
        return {name: fact for name, fact in uses.items() if getattr(self, name) is not None}


class Reward(Strict):
    """Points (fixed or per currency unit of a purchase, times the tier multiplier) or a coupon."""

    kind: RewardKind
    points: Annotated[int, Field(ge=1, le=MAX_POINTS)] | None = None
    offer_id: uuid.UUID | None = None
    # Multiply points by the customer's tier multiplier.
    tier_multiplier: bool = True

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.kind is RewardKind.COUPON:
            if self.offer_id is None:
                raise FieldProblem("offerId", "a coupon reward needs offerId")
            if self.points is not None:
                raise FieldProblem("points", "a coupon reward has no points")
        elif self.points is None:
            raise FieldProblem("points", "a points reward needs points")
        elif self.offer_id is not None:
            raise FieldProblem("offerId", "a points reward has no offerId")
        return self


class Cap(Strict):
    """At most ``count`` payouts of the rule per customer per ``period``."""

    period: Period
    count: Annotated[int, Field(ge=1, le=1_000_000)]


class RuleDefinition(Strict):
    """One version of a rule: everything that decides what it pays."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    trigger: Trigger
    conditions: Conditions = Conditions()
    reward: Reward
    caps: Annotated[list[Cap], Field(max_length=4)] = []
    budget_points: Annotated[int, Field(ge=1)] | None = None
    budget_count: Annotated[int, Field(ge=1)] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)] = 0
    stop_after: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.starts_at is not None and self.starts_at.tzinfo is None:
            raise FieldProblem("startsAt", "needs a time zone")
        if self.ends_at is not None and self.ends_at.tzinfo is None:
            raise FieldProblem("endsAt", "needs a time zone")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise FieldProblem("endsAt", "endsAt must be after startsAt")
        periods = [cap.period for cap in self.caps]
        if len(set(periods)) != len(periods):
            raise FieldProblem("caps", "one cap per period")
        if self.reward.kind is RewardKind.POINTS_PER_UNIT and (
            self.trigger is not Trigger.PURCHASE_RECORDED
        ):
            raise FieldProblem("reward.kind", "points per currency unit need the purchase trigger")
        return self

    def errors_of_facts(self) -> list[tuple[str, str]]:
        """Conditions on facts the trigger does not carry: [(field, message)]."""
        available = TRIGGER_FACTS[self.trigger]
        return [
            (name, f"does not apply to {self.trigger.value}")
            for name, fact in self.conditions.facts_used().items()
            if fact not in available
        ]

    def as_json(self) -> dict[str, Any]:
        """The definition as stored (JSON types)."""
        return self.model_dump(mode="json")


class Facts(Strict):
    """What rewards knows of one trigger event when it happened (conditions look only here)."""

    trigger: Trigger
    customer_id: uuid.UUID
    occurred_at: datetime
    channel: str | None = None
    kind: str | None = None
    sentiment: float | None = None
    sentiment_label: str | None = None
    status: str | None = None
    rank: int | None = None
    amount_cents: int | None = None
    currency: str | None = None
    purchase_id: uuid.UUID | None = None
    # The customer's context at the time: segment, tier (and its multiplier), consents.
    segment: str | None = None
    tier_id: uuid.UUID | None = None
    tier_multiplier: float = 1.0
    consents: frozenset[str] = frozenset()
    first_time: bool = False


def _any_of(allowed: list[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


def _within(low: float | None, high: float | None, value: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def matches(rule: RuleDefinition, facts: Facts) -> bool:
    """Whether ``rule`` applies to the event of ``facts`` (trigger, time window, conditions)."""
    if facts.trigger is not rule.trigger:
        return False
    if rule.starts_at is not None and facts.occurred_at < rule.starts_at:
        return False
    if rule.ends_at is not None and facts.occurred_at >= rule.ends_at:
        return False
    c = rule.conditions
    tier_ids = [str(t) for t in c.tier_ids] if c.tier_ids is not None else None
    rank_ok = c.max_rank is None or (facts.rank is not None and facts.rank <= c.max_rank)
    return (
        _any_of(c.channels, facts.channel)
        and _any_of(c.interaction_kinds, facts.kind)
        and _within(c.sentiment_min, c.sentiment_max, facts.sentiment)
        and _any_of(c.sentiment_labels, facts.sentiment_label)
        and _any_of(c.segments, facts.segment)
        and _any_of(tier_ids, str(facts.tier_id) if facts.tier_id else None)
        and all(purpose in facts.consents for purpose in c.consent_purposes or ())
        and (not c.first_time or facts.first_time)
        and _within(c.amount_min_cents, c.amount_max_cents, facts.amount_cents)
        and _any_of(c.currencies, facts.currency)
        and _any_of(c.idea_statuses, facts.status)
        and rank_ok
    )


def reward_points(reward: Reward, facts: Facts) -> int:
    """The points ``reward`` gives for ``facts`` (0 for a coupon or a purchase under one unit).

    Per-unit rewards count whole currency units (amount_cents // 100); the tier multiplier is
    applied last and rounded down.
    """
    if reward.kind is RewardKind.COUPON or reward.points is None:
        return 0
    base = reward.points
    if reward.kind is RewardKind.POINTS_PER_UNIT:
        base = reward.points * ((facts.amount_cents or 0) // 100)
    multiplier = facts.tier_multiplier if reward.tier_multiplier else 1.0
    # Multipliers are stored with two decimals: work in hundredths to avoid float drift.
    return base * round(multiplier * 100) // 100


def period_start(period: Period, at: datetime) -> datetime | None:
    """The start of the calendar ``period`` (UTC) containing ``at``; None for ``ever``."""
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if period is Period.MONTH:
        return day.replace(day=1)
    return None


def cap_allows(caps: list[Cap], paid_at: list[datetime], at: datetime) -> bool:
    """Whether one more payout at ``at`` stays within ``caps``, given the times of earlier ones."""
    for cap in caps:
        bounds = period_bounds(cap.period, at)
        within = [t for t in paid_at if bounds is None or bounds[0] <= t < bounds[1]]
        if len(within) >= cap.count:
            return False
    return True


def period_bounds(period: Period, at: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of the calendar ``period`` containing ``at``; None for ``ever``."""
    start = period_start(period, at)
    return None if start is None else (start, period_end(period, start))


def period_end(period: Period, start: datetime) -> datetime:
    """The end of the period that begins at ``start`` (not for ``ever``)."""
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(weeks=1)
    # MONTH: the first day of the next month.
    return (start + timedelta(days=32)).replace(day=1)
