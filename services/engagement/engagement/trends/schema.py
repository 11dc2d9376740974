"""Trends in the graph: ``trend`` and ``trendingTopics`` (listening:read)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from crm_shared.auth import Permission
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import check_first
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from engagement.trends import service

MAX_HOURS = 24 * 7
BASELINE_PERIODS = 3


@strawberry.enum(name="TrendGranularity")
class Granularity(enum.Enum):
    HOUR = "hour"
    DAY = "day"


def _granularity(value: Granularity) -> service.Granularity:
    return "hour" if value is Granularity.HOUR else "day"


@strawberry.type(name="TrendPoint")
class TrendPointType:
    at: datetime = strawberry.field(description="The start of the UTC hour or day.")
    volume: int = strawberry.field(description="New interactions in it (edits do not count).")


@strawberry.type(name="Trend")
class TrendType:
    """A tracker's or topic's volume per hour or day, every bucket of the range included."""

    tracker_id: strawberry.ID | None
    topic: str | None
    granularity: Granularity
    points: list[TrendPointType]


@strawberry.type(name="TrendingTopic")
class TrendingTopicType:
    """A hashtag's volume in the last hours against its baseline."""

    topic: str = strawberry.field(description="Lower-cased, with its #.")
    volume: int
    baseline: float = strawberry.field(
        description="Its mean volume in the three spans of as many hours before."
    )
    growth: float = strawberry.field(description="(volume + 1) / (baseline + 1).")


@strawberry.type
class Query:
    @strawberry.field(
        description="A tracker's or a topic's volume over time; give exactly one of trackerId "
        "and topic (listening:read).",
        extensions=[needs(Permission.LISTENING_READ)],
    )
    async def trend(
        self,
        info: CrmInfo,
        granularity: Granularity,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        tracker_id: strawberry.ID | None = None,
        topic: str | None = None,
    ) -> TrendType:
        principal = info.context.principal
        if (tracker_id is None) == (topic is None):
            raise BadUserInput(
                "trackerId: give exactly one of trackerId and topic", field="trackerId"
            )
        buckets = service.check_range(from_, to, _granularity(granularity))
        async with info.context.session() as session:
            if tracker_id is not None:
                dimension: service.Dimension = "tracker"
                key = await service.tracker_key(
                    session=session,
                    tenant_id=principal.tenant_id,
                    tracker_id=parse_id(tracker_id, field="trackerId"),
                )
            else:
                dimension, key = "topic", service.normalize_topic(topic or "")
            points = await service.series(
                session=session,
                tenant_id=principal.tenant_id,
                dimension=dimension,
                key=key,
                granularity=_granularity(granularity),
                buckets=buckets,
            )
        return TrendType(
            tracker_id=strawberry.ID(key) if dimension == "tracker" else None,
            topic=key if dimension == "topic" else None,
            granularity=granularity,
            points=[TrendPointType(at=at, volume=volume) for at, volume in points],
        )

    @strawberry.field(
        description="The hashtags most talked about in the last hours, busiest first "
        "(listening:read).",
        extensions=[needs(Permission.LISTENING_READ)],
    )
    async def trending_topics(
        self, info: CrmInfo, hours: int = 24, first: int = 10
    ) -> list[TrendingTopicType]:
        principal = info.context.principal
        if not 1 <= hours <= MAX_HOURS:
            raise BadUserInput(f"hours: must be between 1 and {MAX_HOURS}", field="hours")
        limit = check_first(first)
        async with info.context.session() as session:
            found = await service.trending_topics(
                session=session,
                tenant_id=principal.tenant_id,
                hours=hours,
                baseline_periods=BASELINE_PERIODS,
                limit=limit,
            )
        return [
            TrendingTopicType(
                topic=t.topic,
                volume=t.volume,
                baseline=t.baseline,
                growth=round((t.volume + 1) / (t.baseline + 1), 4),
            )
            for t in found
        ]
