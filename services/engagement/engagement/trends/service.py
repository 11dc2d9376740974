"""Trend counters: kept on ingestion (one upsert per batch), read as series, ranked, and
watched for spikes.

A counter is ``(tenant, dimension, key, granularity, bucket) -> volume``: ``dimension`` is
``tracker`` (key: the tracker's id) or ``topic`` (key: a hashtag, lower-cased with its ``#``);
buckets are UTC hours and days of the platform's time of each new interaction.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, NotFound
from crm_shared.events import record_event
from engagement.listening.models import Tracker
from engagement.trends.events import TrendSpiked
from engagement.trends.spikes import detect_spike

Dimension = Literal["tracker", "topic"]
Granularity = Literal["hour", "day"]
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The longest series one query returns (a month of hours, two years of days).
MAX_POINTS = 24 * 31
MAX_TOPIC = 200

_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")


@dataclass(frozen=True)
class Counted:
    """A new interaction as trends count it: when, and what it matched."""

    at: datetime
    tracker_ids: Sequence[uuid.UUID]
    text: str | None


@dataclass(frozen=True)
class TopicVolume:
    """A topic's volume in the last hours and its baseline (mean volume of as many hours)."""

    topic: str
    volume: int
    baseline: float


def topics(text: str | None) -> list[str]:
    """The hashtags of ``text``, lower-cased with their ``#``, each once, in order."""
    found = (f"#{tag.lower()}" for tag in _HASHTAG.findall(text or ""))
    return [t for t in dict.fromkeys(found) if len(t) <= MAX_TOPIC]


def normalize_topic(topic: str) -> str:
    """A topic argument as stored (``Launch`` or ``#Launch`` -> ``#launch``)."""
    cleaned = "#" + topic.strip().lstrip("#").lower()
    if not re.fullmatch(r"#\w+", cleaned) or len(cleaned) > MAX_TOPIC:
        raise BadUserInput("topic: a hashtag is # and one word (letters, digits, _)", field="topic")
    return cleaned


def bucket(at: datetime, granularity: Granularity) -> datetime:
    """The start of the UTC hour or day ``at`` falls in."""
    hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour if granularity == "hour" else hour.replace(hour=0)


async def count_new(
    *, session: AsyncSession, tenant_id: uuid.UUID, interactions: Iterable[Counted]
) -> int:
    """Add new interactions to their counters in the caller's transaction (one statement for
    the whole batch); how many counters changed."""
    counts: Counter[tuple[str, str, str, datetime]] = Counter()
    for item in interactions:
        keys = [("tracker", str(t)) for t in item.tracker_ids]
        keys += [("topic", t) for t in topics(item.text)]
        for granularity in ("hour", "day"):
            at = bucket(item.at, granularity)
            for dimension, key in keys:
                counts[(dimension, key, granularity, at)] += 1
    if not counts:
        return 0
    # Sorted, so that concurrent batches lock shared counters in the same order.
    rows = sorted(counts.items())
    await session.execute(
        text(
            "INSERT INTO engagement.trend_counts AS c"
            " (tenant_id, dimension, key, granularity, bucket, volume)"
            " SELECT CAST(:tenant AS uuid), * FROM unnest("
            "CAST(:dimensions AS text[]), CAST(:keys AS text[]), CAST(:granularities AS text[]),"
            " CAST(:buckets AS timestamptz[]), CAST(:volumes AS bigint[]))"
            " ON CONFLICT (tenant_id, dimension, key, granularity, bucket)"
            " DO UPDATE SET volume = c.volume + EXCLUDED.volume"
        ),
        {
            "tenant": tenant_id,
            "dimensions": [k[0] for k, _ in rows],
            "keys": [k[1] for k, _ in rows],
            "granularities": [k[2] for k, _ in rows],
            "buckets": [k[3] for k, _ in rows],
            "volumes": [v for _, v in rows],
        },
    )
    return len(rows)


async def tracker_key(*, session: AsyncSession, tenant_id: uuid.UUID, tracker_id: uuid.UUID) -> str:
    """The counter key of the tenant's tracker; NOT_FOUND if the tenant has no such tracker."""
    tracker = await session.get(Tracker, tracker_id)
    if tracker is None or tracker.tenant_id != tenant_id:
        raise NotFound("trackerId: no such tracker", field="trackerId")
    return str(tracker.id)


def check_range(start: datetime, end: datetime, granularity: Granularity) -> list[datetime]:
    """The buckets from ``start``'s to ``end``'s, inclusive; BAD_USER_INPUT if either has no
    time zone, if reversed, or if longer than MAX_POINTS."""
    for name, at in (("from", start), ("to", end)):
        if at.tzinfo is None:
            raise BadUserInput(f"{name}: needs a time zone (e.g. Z)", field=name)
    if start > end:
        raise BadUserInput("from: must not be after to", field="from")
    first, last = bucket(start, granularity), bucket(end, granularity)
    points = int((last - first) / STEP[granularity]) + 1
    if points > MAX_POINTS:
        raise BadUserInput(f"to: at most {MAX_POINTS} {granularity}s in one series", field="to")
    return [first + i * STEP[granularity] for i in range(points)]


async def series(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    dimension: Dimension,
    key: str,
    granularity: Granularity,
    buckets: Sequence[datetime],
) -> list[tuple[datetime, int]]:
    """The volume in each of ``buckets`` (zero where nothing was counted)."""
    rows = await session.execute(
        text(
            "SELECT bucket, volume FROM engagement.trend_counts WHERE tenant_id = :t"
            " AND dimension = :d AND key = :k AND granularity = :g"
            " AND bucket BETWEEN :first AND :last"
        ),
        {
            "t": tenant_id,
            "d": dimension,
            "k": key,
            "g": granularity,
            "first": buckets[0],
            "last": buckets[-1],
        },
    )
    found = {row.bucket: int(row.volume) for row in rows}
    return [(at, found.get(at, 0)) for at in buckets]


async def trending_topics(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    hours: int,
    baseline_periods: int,
    limit: int,
    now: datetime | None = None,
) -> list[TopicVolume]:
    """The topics most talked about in the last ``hours`` (the current hour included), with
    their mean volume over the ``baseline_periods`` spans of ``hours`` before; ties by name."""
    current = bucket(now or utcnow(), "hour")
    since = current - timedelta(hours=hours - 1)
    baseline_since = since - timedelta(hours=hours * baseline_periods)
    rows = await session.execute(
        text(
            "SELECT key, sum(volume) FILTER (WHERE bucket >= :since) AS volume,"
            " coalesce(sum(volume) FILTER (WHERE bucket < :since), 0) AS before"
            " FROM engagement.trend_counts WHERE tenant_id = :t AND dimension = 'topic'"
            " AND granularity = 'hour' AND bucket >= :baseline_since AND bucket <= :current"
            " GROUP BY key HAVING sum(volume) FILTER (WHERE bucket >= :since) > 0"
            " ORDER BY volume DESC, key LIMIT :limit"
        ),
        {
            "t": tenant_id,
            "since": since,
            "baseline_since": baseline_since,
            "current": current,
            "limit": limit,
        },
    )
    return [
        TopicVolume(
            topic=row.key,
            volume=int(row.volume),
            baseline=round(int(row.before) / baseline_periods, 4),
        )
        for row in rows
    ]


async def detect_spikes(
    db: Database,
    *,
    baseline_hours: int,
    k: float,
    min_volume: int,
    now: datetime | None = None,
) -> int:
    """Compare every counter's last complete hour with the ``baseline_hours`` before it and
    announce each spike once (a second run, or another replica, finds it recorded)."""
    hour = bucket(now or utcnow(), "hour") - timedelta(hours=1)
    start = hour - timedelta(hours=baseline_hours)
    announced = 0
    async with db.session() as session, session.begin():
        candidates = (
            await session.execute(
                text(
                    "SELECT c.tenant_id, c.dimension, c.key, c.volume"
                    " FROM engagement.trend_counts c WHERE c.granularity = 'hour'"
                    " AND c.bucket = :hour AND c.volume >= :min_volume AND NOT EXISTS ("
                    "SELECT 1 FROM engagement.trend_spikes s WHERE s.tenant_id = c.tenant_id"
                    " AND s.dimension = c.dimension AND s.key = c.key AND s.hour = :hour)"
                ),
                {"hour": hour, "min_volume": min_volume},
            )
        ).all()
        if not candidates:
            return 0
        history_rows = await session.execute(
            text(
                "SELECT c.tenant_id, c.dimension, c.key, c.bucket, c.volume"
                " FROM engagement.trend_counts c JOIN unnest("
                "CAST(:tenants AS uuid[]), CAST(:dimensions AS text[]), CAST(:keys AS text[]))"
                " AS w(tenant_id, dimension, key) USING (tenant_id, dimension, key)"
                " WHERE c.granularity = 'hour' AND c.bucket >= :start AND c.bucket < :hour"
            ),
            {
                "tenants": [r.tenant_id for r in candidates],
                "dimensions": [r.dimension for r in candidates],
                "keys": [r.key for r in candidates],
                "start": start,
                "hour": hour,
            },
        )
        history: dict[tuple[uuid.UUID, str, str], dict[datetime, int]] = {}
        for row in history_rows:
            history.setdefault((row.tenant_id, row.dimension, row.key), {})[row.bucket] = int(
                row.volume
            )
        hours = [start + timedelta(hours=i) for i in range(baseline_hours)]
        for row in candidates:
            seen = history.get((row.tenant_id, row.dimension, row.key), {})
            spike = detect_spike(
                int(row.volume), [seen.get(h, 0) for h in hours], k=k, min_volume=min_volume
            )
            if spike is None:
                continue
            inserted = await session.execute(
                text(
                    "INSERT INTO engagement.trend_spikes"
                    " (tenant_id, dimension, key, hour, volume, baseline, detected_at)"
                    " VALUES (:t, :d, :k, :hour, :volume, :baseline, :now)"
                    " ON CONFLICT DO NOTHING RETURNING 1"
                ),
                {
                    "t": row.tenant_id,
                    "d": row.dimension,
                    "k": row.key,
                    "hour": hour,
                    "volume": spike.volume,
                    "baseline": spike.baseline,
                    "now": utcnow(),
                },
            )
            if inserted.scalar_one_or_none() is None:
                continue
            tracker_id = uuid.UUID(row.key) if row.dimension == "tracker" else None
            await record_event(
                session,
                TrendSpiked(
                    dimension=row.dimension,
                    tracker_id=tracker_id,
                    topic=row.key if row.dimension == "topic" else None,
                    hour=hour,
                    volume=spike.volume,
                    baseline=spike.baseline,
                    threshold=spike.threshold,
                ),
                tenant_id=row.tenant_id,
                subject=row.key,
            )
            announced += 1
    return announced
