"""Retention of the event tables on real PostgreSQL: published outbox rows and inbox rows past
their retention are deleted in bounded batches; recent rows and unpublished rows stay; every
service's app runs the job on its own schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import pytest
from fastapi import FastAPI
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy import text

import engagement.main
import identity.main
import rewards.main
from crm_shared import devstack
from crm_shared.app import RETENTION_JOB, PeriodicJob
from crm_shared.db import Database, asyncpg_dsn, utcnow
from crm_shared.events.retention import delete_batch, prune, prune_table
from crm_shared.settings import ServiceSettings
from engagement.settings import EngagementSettings
from identity.settings import IdentitySettings
from rewards.settings import RewardsSettings
from tests.conftest import AMQP_BASE, settings_for

SERVICES = ("identity", "engagement", "rewards")
WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
DAY = timedelta(days=1)


@pytest.fixture(params=SERVICES)
async def db(request: pytest.FixtureRequest, isolated: devstack.Stack) -> AsyncIterator[Database]:
    """One service's database in the isolated stack, as that service's role."""
    database = Database(settings_for(isolated, request.param))
    yield database
    await database.dispose()


async def add_outbox_row(db: Database, *, age: timedelta, published_age: timedelta | None) -> int:
    """An outbox row created ``age`` ago, published ``published_age`` ago (None: not yet)."""
    event_id = uuid.uuid4()
    now = utcnow()
    async with db.session() as session, session.begin():
        result = await session.execute(
            text(
                f"INSERT INTO {db.schema}.outbox "
                "(id, type, routing_key, envelope, created_at, published_at) "
                "VALUES (:id, 'test.retained.v1', 'test.retained.v1.none', "
                "CAST(:envelope AS jsonb), :created, :published) RETURNING seq"
            ),
            {
                "id": event_id,
                "envelope": f'{{"id": "{event_id}", "type": "test.retained.v1"}}',
                "created": now - age,
                "published": None if published_age is None else now - published_age,
            },
        )
        return int(result.scalar_one())


async def add_inbox_row(db: Database, *, age: timedelta) -> uuid.UUID:
    """An inbox row of a handler that applied an event ``age`` ago."""
    event_id = uuid.uuid4()
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                f"INSERT INTO {db.schema}.inbox (event_id, handler, event_type, handled_at) "
                "VALUES (:id, 'tests.retention.handler', 'test.retained.v1', :handled)"
            ),
            {"id": event_id, "handled": utcnow() - age},
        )
    return event_id


async def outbox_seqs(db: Database, seqs: list[int]) -> set[int]:
    """Which of ``seqs`` are still in the outbox."""
    async with db.session() as session:
        rows = await session.execute(
            text(f"SELECT seq FROM {db.schema}.outbox WHERE seq = ANY(:seqs)"), {"seqs": seqs}
        )
        return {int(r[0]) for r in rows}


async def inbox_ids(db: Database, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ids`` are still in the inbox."""
    async with db.session() as session:
        rows = await session.execute(
            text(f"SELECT event_id FROM {db.schema}.inbox WHERE event_id = ANY(:ids)"),
            {"ids": ids},
        )
        return {r[0] for r in rows}


async def test_published_outbox_rows_past_retention_go_recent_and_unpublished_ones_stay(
    db: Database,
) -> None:
    old = [await add_outbox_row(db, age=9 * DAY, published_age=8 * DAY) for _ in range(3)]
    recent = await add_outbox_row(db, age=6 * DAY, published_age=6 * DAY)
    # An event still owed to the broker (relay down for weeks): never deleted.
    unpublished = await add_outbox_row(db, age=60 * DAY, published_age=None)

    pruned = await prune(db, outbox_retention=WEEK, inbox_retention=MONTH, batch_size=100)

    assert pruned.outbox >= 3
    assert await outbox_seqs(db, [*old, recent, unpublished]) == {recent, unpublished}


async def test_inbox_rows_past_their_longer_retention_go(db: Database) -> None:
    old = await add_inbox_row(db, age=31 * DAY)
    # Older than the outbox's week, younger than the inbox's month: still guards duplicates.
    kept = await add_inbox_row(db, age=20 * DAY)

    pruned = await prune(db, outbox_retention=WEEK, inbox_retention=MONTH, batch_size=100)

    assert pruned.inbox >= 1
    assert await inbox_ids(db, [old, kept]) == {kept}


async def test_one_delete_removes_at_most_a_batch_and_a_round_repeats_until_done(
    identity_db: Database,
) -> None:
    db = identity_db
    # Far older than anything else in the isolated database, so only these rows are due.
    rows = [await add_outbox_row(db, age=400 * DAY, published_age=400 * DAY) for _ in range(7)]
    cutoff = utcnow() - 300 * DAY

    assert await delete_batch(db, "outbox", cutoff=cutoff, limit=3) == 3
    assert len(await outbox_seqs(db, rows)) == 4

    assert await prune_table(db, "outbox", cutoff=cutoff, batch_size=3) == 4
    assert await outbox_seqs(db, rows) == set()


async def test_a_row_locked_elsewhere_is_skipped_not_waited_for(
    isolated: devstack.Stack, rewards_db: Database
) -> None:
    db = rewards_db
    locked, free = [
        await add_outbox_row(db, age=400 * DAY, published_age=400 * DAY) for _ in range(2)
    ]
    other = await asyncpg.connect(asyncpg_dsn(isolated.database_url("rewards")))
    try:
        # An erasure (scrub_outbox) holding the row, say.
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SELECT 1 FROM rewards.outbox WHERE seq = $1 FOR UPDATE", locked)

        await asyncio.wait_for(
            prune(db, outbox_retention=300 * DAY, inbox_retention=MONTH, batch_size=10), 10
        )
        assert await outbox_seqs(db, [locked, free]) == {locked}

        await transaction.rollback()
        await prune(db, outbox_retention=300 * DAY, inbox_retention=MONTH, batch_size=10)
        assert await outbox_seqs(db, [locked, free]) == set()
    finally:
        await other.close()


async def test_each_batch_reads_the_retention_indexes_not_the_whole_table(db: Database) -> None:
    plans = {}
    async with db.session() as session, session.begin():
        # The tables are small here, so make the planner show the path it would take on a
        # large table.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        for table, condition in {
            "outbox": "published_at IS NOT NULL AND published_at < now()",
            "inbox": "handled_at < now()",
        }.items():
            rows = await session.execute(
                text(
                    f"EXPLAIN DELETE FROM {db.schema}.{table} WHERE ctid = ANY(ARRAY("
                    f"SELECT ctid FROM {db.schema}.{table} WHERE {condition} "
                    "LIMIT 10 FOR UPDATE SKIP LOCKED))"
                )
            )
            plans[table] = "\n".join(r[0] for r in rows)
    assert "outbox_published_at" in plans["outbox"], plans["outbox"]
    assert "inbox_handled_at" in plans["inbox"], plans["inbox"]
    for plan in plans.values():
        assert "Tid Scan" in plan, plan


def pruned_count(schema: str, table: str) -> float:
    """``crm_events_pruned_total`` of ``schema`` and ``table`` in this process's registry."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())
        for sample in family.samples
        if sample.name == "crm_events_pruned_total"
        and {"schema": schema, "table": table}.items() <= sample.labels.items()
    )


async def test_pruned_rows_are_counted_by_schema_and_table(identity_db: Database) -> None:
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
    db = identity_db
    before = pruned_count("identity", "outbox"), pruned_count("identity", "inbox")
    for _ in range(2):
        await add_outbox_row(db, age=400 * DAY, published_age=400 * DAY)
    await add_inbox_row(db, age=400 * DAY)

    pruned = await prune(db, outbox_retention=300 * DAY, inbox_retention=300 * DAY, batch_size=10)

    assert (pruned.outbox, pruned.inbox) == (2, 1)
    assert pruned_count("identity", "outbox") == before[0] + 2
    assert pruned_count("identity", "inbox") == before[1] + 1


def _identity(stack: devstack.Stack) -> tuple[ServiceSettings, FastAPI]:
    settings = IdentitySettings(
        database_url=stack.database_url("identity"), amqp_url=f"{AMQP_BASE}/{stack.vhost}"
    )
    return settings, identity.main.create_app(settings)


def _engagement(stack: devstack.Stack) -> tuple[ServiceSettings, FastAPI]:
    settings = EngagementSettings(
        database_url=stack.database_url("engagement"), amqp_url=f"{AMQP_BASE}/{stack.vhost}"
    )
    return settings, engagement.main.create_app(settings)


def _rewards(stack: devstack.Stack) -> tuple[ServiceSettings, FastAPI]:
    settings = RewardsSettings(
        database_url=stack.database_url("rewards"), amqp_url=f"{AMQP_BASE}/{stack.vhost}"
    )
    return settings, rewards.main.create_app(settings)


@pytest.mark.parametrize("build", [_identity, _engagement, _rewards], ids=SERVICES)
async def test_every_service_app_prunes_its_own_event_tables(
    isolated: devstack.Stack, build: Callable[[devstack.Stack], tuple[ServiceSettings, FastAPI]]
) -> None:
    settings, app = build(isolated)
    db: Database = app.state.db
    try:
        jobs: tuple[PeriodicJob, ...] = app.state.jobs
        [job] = [j for j in jobs if j.name == RETENTION_JOB]
        assert job.interval_seconds == settings.retention_interval_seconds > 0
        old = await add_outbox_row(db, age=9 * DAY, published_age=8 * DAY)
        recent = await add_outbox_row(db, age=DAY, published_age=DAY)
        old_inbox = await add_inbox_row(db, age=31 * DAY)

        await job.run(db)  # what the app's lifespan runs every interval

        assert await outbox_seqs(db, [old, recent]) == {recent}
        assert await inbox_ids(db, [old_inbox]) == set()
    finally:
        await db.dispose()


def test_the_retention_must_be_positive_and_outlive_the_retries() -> None:
    assert ServiceSettings().outbox_retention_days == 7
    assert ServiceSettings().inbox_retention_days == 30
    with pytest.raises(ValidationError, match="positive"):
        ServiceSettings(outbox_retention_days=0)
    with pytest.raises(ValidationError, match="outlive the retries"):
        ServiceSettings(inbox_retention_days=0.0001, retry_delays_ms=[60_000, 3_600_000])
    with pytest.raises(ValidationError, match="batch_size"):
        ServiceSettings(retention_batch_size=0)
