"""Classifying customers into participation segments, on new interactions and periodically,
and announcing each change once.

The customers a tenant's segments cover are those engagement knows: with a linked social
profile or with interactions attached.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.events import record_event
from crm_shared.validation import validated
from engagement.segments.classify import SEGMENTS, Activity, Segment, Thresholds, classify
from engagement.segments.events import SegmentChanged
from engagement.segments.models import CustomerSegment, SegmentSettingsRow
from engagement.settings import EngagementSettings


@dataclass(frozen=True)
class Change:
    """A customer's move between segments."""

    customer_id: uuid.UUID
    previous: Segment | None
    segment: Segment


class ThresholdsUpdate(BaseModel):
    """The settings a tenant may change (absent fields keep their value)."""

    model_config = ConfigDict(extra="forbid")

    window_days: int | None = Field(default=None, ge=1, le=365)
    creator_min_originals: int | None = Field(default=None, ge=1, le=10_000)
    occasional_min_contributions: int | None = Field(default=None, ge=1, le=10_000)


@cache
def default_thresholds() -> Thresholds:
    """The service's defaults (``ENGAGEMENT_SEGMENT_*``), for tenants without their own."""
    settings = EngagementSettings()
    return Thresholds(
        window_days=settings.segment_window_days,
        creator_min_originals=settings.segment_creator_min_originals,
        occasional_min_contributions=settings.segment_occasional_min_contributions,
    )


async def thresholds(*, session: AsyncSession, tenant_id: uuid.UUID) -> Thresholds:
    """The tenant's segment settings, or the defaults."""
    row = await session.get(SegmentSettingsRow, tenant_id)
    if row is None:
        return default_thresholds()
    return Thresholds(
        window_days=row.window_days,
        creator_min_originals=row.creator_min_originals,
        occasional_min_contributions=row.occasional_min_contributions,
    )


async def update_thresholds(
    *, session: AsyncSession, tenant_id: uuid.UUID, changes: dict[str, int | None]
) -> Thresholds:
    """Change the tenant's settings (BAD_USER_INPUT naming ``input.<field>``); customers are
    reclassified under them by the next periodic run."""
    update = validated(ThresholdsUpdate, changes)
    current = await thresholds(session=session, tenant_id=tenant_id)
    merged = Thresholds(
        window_days=update.window_days or current.window_days,
        creator_min_originals=update.creator_min_originals or current.creator_min_originals,
        occasional_min_contributions=update.occasional_min_contributions
        or current.occasional_min_contributions,
    )
    await session.execute(
        text(
            "INSERT INTO engagement.segment_settings (tenant_id, window_days,"
            " creator_min_originals, occasional_min_contributions, updated_at)"
            " VALUES (:t, :w, :c, :o, :now) ON CONFLICT (tenant_id) DO UPDATE SET"
            " window_days = EXCLUDED.window_days,"
            " creator_min_originals = EXCLUDED.creator_min_originals,"
            " occasional_min_contributions = EXCLUDED.occasional_min_contributions,"
            " updated_at = EXCLUDED.updated_at"
        ),
        {
            "t": tenant_id,
            "w": merged.window_days,
            "c": merged.creator_min_originals,
            "o": merged.occasional_min_contributions,
            "now": utcnow(),
        },
    )
    return merged


async def _activity(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID] | None,
    since: datetime,
) -> dict[uuid.UUID, Activity]:
    only = "" if customer_ids is None else " AND customer_id = ANY(:ids)"
    rows = await session.execute(
        text(
            "WITH known AS ("
            f"SELECT customer_id FROM engagement.profile_links WHERE tenant_id = :t{only}"
            " UNION SELECT customer_id FROM engagement.interactions WHERE tenant_id = :t"
            f" AND customer_id IS NOT NULL{only})"
            " SELECT k.customer_id,"
            " count(i.id) FILTER (WHERE i.kind IN ('post', 'review') AND i.created_at >= :since)"
            " AS originals, count(i.id) FILTER (WHERE i.created_at >= :since) AS items,"
            " count(i.id) AS ever FROM known k LEFT JOIN engagement.interactions i"
            " ON i.tenant_id = :t AND i.customer_id = k.customer_id GROUP BY k.customer_id"
        ),
        {"t": tenant_id, "since": since, **({} if customer_ids is None else {"ids": customer_ids})},
    )
    return {
        row.customer_id: Activity(int(row.originals), int(row.items), int(row.ever)) for row in rows
    }


async def refresh(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[Change]:
    """Reclassify ``customer_ids`` (None: every known customer of the tenant, forgetting the
    segments of customers no longer known) and announce each change, in the caller's
    transaction."""
    if customer_ids is not None and not customer_ids:
        return []
    now = now or utcnow()
    limits = await thresholds(session=session, tenant_id=tenant_id)
    activity = await _activity(
        session, tenant_id, customer_ids, now - timedelta(days=limits.window_days)
    )
    ids = sorted(activity)
    if customer_ids is None:
        await session.execute(
            text(
                "DELETE FROM engagement.customer_segments WHERE tenant_id = :t"
                " AND NOT customer_id = ANY(:ids)"
            ),
            {"t": tenant_id, "ids": ids},
        )
    if not ids:
        return []
    # Locked in id order: a concurrent refresh waits, then sees (and keeps) this one's result.
    locked = await session.execute(
        text(
            "SELECT customer_id, segment FROM engagement.customer_segments WHERE tenant_id = :t"
            " AND customer_id = ANY(:ids) ORDER BY customer_id FOR UPDATE"
        ),
        {"t": tenant_id, "ids": ids},
    )
    current: dict[uuid.UUID, Segment] = {row.customer_id: row.segment for row in locked}
    changes: list[Change] = []
    for customer_id in ids:
        segment = classify(activity[customer_id], limits)
        previous = current.get(customer_id)
        if segment != previous:
            changes.append(Change(customer_id, previous, segment))
    moved = [c for c in changes if c.previous is not None]
    if moved:
        await session.execute(
            text(
                "UPDATE engagement.customer_segments s SET segment = m.segment, since = :now,"
                " computed_at = :now FROM unnest(CAST(:ids AS uuid[]), CAST(:segments AS text[]))"
                " AS m(customer_id, segment) WHERE s.tenant_id = :t"
                " AND s.customer_id = m.customer_id"
            ),
            {
                "t": tenant_id,
                "now": now,
                "ids": [c.customer_id for c in moved],
                "segments": [c.segment for c in moved],
            },
        )
    announced = list(moved)
    fresh = [c for c in changes if c.previous is None]
    if fresh:
        inserted = await session.execute(
            text(
                "INSERT INTO engagement.customer_segments"
                " (tenant_id, customer_id, segment, since, computed_at)"
                " SELECT CAST(:t AS uuid), m.customer_id, m.segment, :now, :now"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:segments AS text[]))"
                " AS m(customer_id, segment)"
                " ON CONFLICT DO NOTHING RETURNING customer_id"
            ),
            {
                "t": tenant_id,
                "now": now,
                "ids": [c.customer_id for c in fresh],
                "segments": [c.segment for c in fresh],
            },
        )
        won = set(inserted.scalars())
        announced += [c for c in fresh if c.customer_id in won]
    for change in announced:
        await record_event(
            session,
            SegmentChanged(
                customer_id=change.customer_id, previous=change.previous, segment=change.segment
            ),
            tenant_id=tenant_id,
            subject=str(change.customer_id),
        )
    return announced


async def refresh_all(db: Database, *, now: datetime | None = None) -> int:
    """Reclassify every tenant's customers, a tenant per transaction; changes announced."""
    async with db.session() as session:
        tenants = list(
            (
                await session.execute(
                    text(
                        "SELECT tenant_id FROM engagement.profile_links"
                        " UNION SELECT tenant_id FROM engagement.customer_segments"
                        " UNION SELECT DISTINCT tenant_id FROM engagement.interactions"
                        " WHERE customer_id IS NOT NULL"
                    )
                )
            ).scalars()
        )
    changed = 0
    for tenant_id in tenants:
        async with db.session() as session, session.begin():
            changed += len(await refresh(session=session, tenant_id=tenant_id, now=now))
    return changed


async def segments_of(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerSegment]:
    """The current segments of ``customer_ids`` (those never classified are absent)."""
    rows = await session.execute(
        text(
            "SELECT * FROM engagement.customer_segments WHERE tenant_id = :t"
            " AND customer_id = ANY(:ids)"
        ),
        {"t": tenant_id, "ids": list(customer_ids)},
    )
    return {row.customer_id: CustomerSegment.model_validate(row._mapping) for row in rows}


async def counts(*, session: AsyncSession, tenant_id: uuid.UUID) -> dict[Segment, int]:
    """How many customers each segment holds (every segment listed)."""
    rows = await session.execute(
        text(
            "SELECT segment, count(*) AS n FROM engagement.customer_segments"
            " WHERE tenant_id = :t GROUP BY segment"
        ),
        {"t": tenant_id},
    )
    found = {row.segment: int(row.n) for row in rows}
    return {segment: found.get(segment, 0) for segment in SEGMENTS}
