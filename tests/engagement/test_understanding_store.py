"""Trends, segments and influence against the real database (in-process, no services)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from crm_shared import devstack
from crm_shared.db import Database, utcnow
from engagement.influence import service as influence
from engagement.influence.scoring import Rules
from engagement.ingestion.normalized import NormalizedItem, Report
from engagement.ingestion.service import ingest
from engagement.interactions.service import link_profile
from engagement.listening.service import create_tracker
from engagement.privacy.service import export_customer
from engagement.segments import service as segments
from engagement.trends import service as trends
from tests.conftest import settings_for
from tests.engagement.conftest import outbox

RULES = Rules(min_score=0.5, advocate_min_sentiment=0.3, detractor_max_sentiment=-0.3)


@pytest.fixture
async def db(isolated: devstack.Stack) -> AsyncIterator[Database]:
    """Engagement's database in the isolated stack, as engagement's role."""
    database = Database(settings_for(isolated, "engagement"))
    yield database
    await database.dispose()


async def store(db: Database, tenant: uuid.UUID, items: list[dict[str, Any]]) -> Report:
    async with db.session() as session, session.begin():
        report, _ = await ingest(
            session=session,
            tenant_id=tenant,
            items=[NormalizedItem.model_validate(i) for i in items],
            min_confidence=0.5,
        )
    return report


def item(platform_id: str, text: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "x",
        "platform_id": platform_id,
        "kind": "post",
        "text": text,
        "created_at": at,
        **extra,
    }


async def tracker(db: Database, tenant: uuid.UUID, term: str) -> uuid.UUID:
    async with db.session() as session, session.begin():
        return (
            await create_tracker(session=session, tenant_id=tenant, kind="keyword", term=term)
        ).id


async def volumes(
    db: Database,
    tenant: uuid.UUID,
    dimension: trends.Dimension,
    key: str,
    granularity: trends.Granularity,
    start: datetime,
    end: datetime,
) -> list[int]:
    async with db.session() as session:
        points = await trends.series(
            session=session,
            tenant_id=tenant,
            dimension=dimension,
            key=key,
            granularity=granularity,
            buckets=trends.check_range(start, end, granularity),
        )
    return [volume for _, volume in points]


async def test_ingestion_counts_each_new_interaction_once_per_hour_and_day(db: Database) -> None:
    tenant = uuid.uuid4()
    acme = await tracker(db, tenant, "acme")
    ten = datetime(2025, 6, 1, 10, tzinfo=UTC)
    first = [
        item("p1", "Acme rocks #Launch", ten + timedelta(minutes=15)),
        item("p2", "acme again #launch #Sound", ten + timedelta(minutes=40)),
        item("p3", "ACME at eleven", ten + timedelta(minutes=65)),
        item("p4", "nothing tracked here", ten + timedelta(minutes=70)),
    ]
    assert (await store(db, tenant, first)).accepted == 4
    again = await store(
        db,
        tenant,
        [
            first[0],
            item(
                "p2",
                "acme acme #launch #other",
                ten + timedelta(minutes=40),
                edited_at=ten + timedelta(minutes=50),
            ),
        ],
    )
    assert (again.duplicates, again.updated) == (1, 1)

    hours = await volumes(db, tenant, "tracker", str(acme), "hour", ten, ten + timedelta(hours=2))
    assert hours == [2, 1, 0]
    assert await volumes(db, tenant, "tracker", str(acme), "day", ten, ten) == [3]
    assert await volumes(db, tenant, "topic", "#launch", "hour", ten, ten) == [2]
    assert await volumes(db, tenant, "topic", "#sound", "day", ten, ten) == [1]
    # The edit added #other: an edit is not a new interaction, so it is not counted.
    assert await volumes(db, tenant, "topic", "#other", "hour", ten, ten) == [0]
    # Another tenant's counters are its own.
    assert await volumes(db, uuid.uuid4(), "topic", "#launch", "hour", ten, ten) == [0]


async def test_a_batch_updates_its_counters_in_one_statement(db: Database) -> None:
    tenant = uuid.uuid4()
    await tracker(db, tenant, "acme")
    at = datetime(2025, 6, 2, 8, tzinfo=UTC)
    batch = [item(f"b{i}", f"acme #tag{i % 7}", at + timedelta(minutes=i)) for i in range(50)]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "trend_counts" in statement:
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert (await store(db, tenant, batch)).accepted == 50
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    assert await volumes(db, tenant, "topic", "#tag3", "day", at, at) == [7]


async def test_a_spike_is_announced_once(db: Database) -> None:
    tenant = uuid.uuid4()
    acme = await tracker(db, tenant, "acme")
    nine = datetime(2025, 7, 1, 9, tzinfo=UTC)
    quiet = [item(f"q{h}", "acme", nine - timedelta(hours=h)) for h in range(1, 25)]
    burst = [item(f"s{i}", "acme", nine + timedelta(minutes=i)) for i in range(12)]
    await store(db, tenant, quiet + burst)
    now = nine + timedelta(hours=1, minutes=20)
    for _ in range(2):
        await trends.detect_spikes(db, baseline_hours=48, k=3, min_volume=10, now=now)
    spiked = await outbox(db, str(tenant), "engagement.trend.spiked.v1")
    assert len(spiked) == 1
    assert spiked[0]["dimension"] == "tracker"
    assert spiked[0]["tracker_id"] == str(acme)
    assert spiked[0]["volume"] == 12
    assert spiked[0]["baseline"] == pytest.approx(0.5)
    assert datetime.fromisoformat(spiked[0]["hour"]) == nine
    # The next hour is back to normal: nothing more.
    await trends.detect_spikes(
        db, baseline_hours=48, k=3, min_volume=10, now=now + timedelta(hours=1)
    )
    assert len(await outbox(db, str(tenant), "engagement.trend.spiked.v1")) == 1


async def link(db: Database, tenant: uuid.UUID, user: str, customer: uuid.UUID) -> None:
    async with db.session() as session, session.begin():
        await link_profile(
            session=session,
            tenant_id=tenant,
            channel="x",
            platform_user_id=user,
            customer_id=customer,
            link_id=None,
        )


async def test_segment_changes_are_announced_once_each(db: Database) -> None:
    tenant, creator, watcher = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await link(db, tenant, "u-creator", creator)
    await link(db, tenant, "u-watcher", watcher)
    yesterday = utcnow() - timedelta(days=1)
    author = {"author": {"platform_user_id": "u-creator"}}
    posts = [item(f"c{i}", f"post {i}", yesterday, **author) for i in range(3)]
    await store(db, tenant, posts)
    await store(db, tenant, [item("c9", "a comment", yesterday, kind="comment", **author)])
    async with db.session() as session, session.begin():
        await segments.refresh(session=session, tenant_id=tenant)
    await segments.refresh_all(db)

    changed = await outbox(db, str(tenant), "engagement.segment.changed.v1")
    assert sorted((e["customer_id"], e["previous"], e["segment"]) for e in changed) == sorted(
        [(str(creator), None, "creator"), (str(watcher), None, "observer")]
    )

    async with db.session() as session, session.begin():
        await segments.update_thresholds(
            session=session, tenant_id=tenant, changes={"creator_min_originals": 5}
        )
    for _ in range(2):
        await segments.refresh_all(db)
    changed = await outbox(db, str(tenant), "engagement.segment.changed.v1")
    assert [(e["previous"], e["segment"]) for e in changed[2:]] == [("creator", "occasional")]
    async with db.session() as session:
        assert await segments.counts(session=session, tenant_id=tenant) == {
            "creator": 0,
            "occasional": 1,
            "observer": 1,
            "inactive": 0,
        }


async def consent(db: Database, tenant: uuid.UUID, customer: uuid.UUID, granted: bool) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO engagement.consents (tenant_id, customer_id, purpose, granted,"
                " changed_at) VALUES (:t, :c, 'profiling', :g, now()) ON CONFLICT"
                " (tenant_id, customer_id, purpose) DO UPDATE SET granted = EXCLUDED.granted"
            ),
            {"t": tenant, "c": customer, "g": granted},
        )


async def recompute(db: Database, tenant: uuid.UUID) -> influence.Summary | None:
    async with db.session() as session, session.begin():
        return await influence.recompute(
            session=session, tenant_id=tenant, rules=RULES, damping=0.85, sentiment_days=30
        )


async def test_influence_is_computed_only_for_customers_who_allow_profiling(
    db: Database,
) -> None:
    tenant, star, fan = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await link(db, tenant, "u-star", star)
    await link(db, tenant, "u-fan", fan)
    await consent(db, tenant, star, True)
    at = utcnow() - timedelta(hours=3)
    star_author = {"platform_user_id": "u-star", "handle": "StarVoice", "followers": 5000}
    metrics = {"public_metrics": {"like_count": 7, "retweet_count": 3, "quote_count": 1}}
    await store(
        db,
        tenant,
        [
            item(
                "s1",
                "I love this brand, wonderful and great!",
                at,
                author=star_author,
                raw={"post": metrics},
            ),
            item(
                "f1",
                "Great point, love it",
                at,
                kind="reply",
                parent_id="s1",
                author={"platform_user_id": "u-fan", "followers": 10},
            ),
            item("o1", "listen to @starvoice, so good", at, author={"platform_user_id": "u-other"}),
            item(
                "o2",
                "quoting this",
                at,
                author={"platform_user_id": "u-other"},
                raw={"post": {"referenced_tweets": [{"type": "quoted", "id": "s1"}]}},
            ),
        ],
    )
    summary = await recompute(db, tenant)
    assert summary is not None
    assert (summary.profiles, summary.edges, summary.scored) == (3, 3, 1)

    async with db.session() as session:
        scores = await influence.scores_of(session, tenant, [star, fan])
    assert set(scores) == {star}
    mine = scores[star]
    assert (mine.reach, mine.amplification, mine.engagement_received) == (5000, 4, 1 + 7 + 4)
    assert mine.page_rank > 1 / 3
    assert mine.influencer and mine.advocate and not mine.detractor

    await recompute(db, tenant)
    identified = await outbox(db, str(tenant), "engagement.influencer.identified.v1")
    assert [(e["customer_id"], e["advocate"]) for e in identified] == [(str(star), True)]
    async with db.session() as session:
        exported = await export_customer(session, tenant_id=tenant, customer_id=star)
    assert exported["segment"]["segment"] == "occasional"
    assert exported["influence"]["reach"] == 5000

    await consent(db, tenant, star, False)
    await recompute(db, tenant)
    async with db.session() as session:
        assert await influence.scores_of(session, tenant, [star]) == {}
        left = await session.execute(
            text("SELECT count(*) FROM engagement.influence_scores WHERE tenant_id = :t"),
            {"t": tenant},
        )
        assert left.scalar_one() == 0
    identified = await outbox(db, str(tenant), "engagement.influencer.identified.v1")
    assert identified[1] == {
        "customer_id": str(star),
        "score": None,
        "influencer": False,
        "advocate": False,
        "detractor": False,
    }
