"""Drill: the outbox relay killed between the broker's confirm and marking its rows, again and
again, loses nothing, and the consumer's inbox absorbs every duplicate.

What it does: before each crash ten more customers are registered; the crashing relay
(``crashing_relay.py``) publishes every unsent row, the broker confirms, and it dies before
the mark, so each crash republishes all earlier rows too (two crashes in ``make test``, ten
in ``make drills``). A healthy relay then publishes and marks everything. What it counts and
prints: events, copies that crossed the broker, customers credited, ledger entries.
Expected: copies above events (duplicates really happened), every customer credited once.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import aio_pika
import asyncpg
import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange
from tests.conftest import AMQP_BASE
from tests.support.factories import make_customer, make_tenant
from tests.support.waiting import eventually

PER_ROUND = 10


async def _entries(db: Database, tenant_id: uuid.UUID) -> dict[str, int]:
    """How many ledger entries each customer of the tenant has."""
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT customer_id::text, count(*) FROM rewards.journal_entries "
                "WHERE tenant_id = :t GROUP BY customer_id"
            ),
            {"t": tenant_id},
        )
        return {c: int(n) for c, n in rows}


async def _crash_repeatedly(
    isolated: devstack.Stack,
    identity_db: Database,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    crashes: int,
) -> None:
    tenant_id = await make_tenant(identity_db)
    channel = await amqp.channel()
    exchange = await declare_exchange(channel, "crm.events")
    observer = await channel.declare_queue(exclusive=True)
    await observer.bind(exchange, routing_key=f"identity.customer.registered.v1.{tenant_id}")
    dsn = isolated.database_url("identity")

    for _ in range(crashes):
        for _ in range(PER_ROUND):
            await make_customer(identity_db, tenant_id)
        crash = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.reliability.crashing_relay",
                dsn,
                f"{AMQP_BASE}/{isolated.vhost}",
                "identity",
            ],
            cwd=devstack.REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crash.returncode == 137, crash.stdout + crash.stderr

    conn = await asyncpg.connect(dsn)
    try:
        await OutboxRelay(dsn=dsn, schema="identity", exchange=exchange).publish_batch(conn)
        unsent = await conn.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE published_at IS NULL "
            "AND envelope->>'tenantid' = $1",
            str(tenant_id),
        )
    finally:
        await conn.close()
    assert unsent == 0

    events = crashes * PER_ROUND
    await eventually(lambda: _entries(rewards_db, tenant_id), lambda e: len(e) == events)
    copies = (await observer.declare()).message_count or 0
    entries = await _entries(rewards_db, tenant_id)
    print(
        f"\nrelay drill: crashes={crashes} events={events} copies={copies} "
        f"credited={len(entries)} entries={sum(entries.values())}"
    )
    # Round r's rows cross the broker in every later crash and once more at the end.
    assert copies == sum(PER_ROUND * (crashes - r + 1) for r in range(crashes))
    assert set(entries.values()) == {1}


async def test_relay_killed_after_confirm_before_mark_repeatedly_loses_nothing(
    isolated: devstack.Stack,
    identity_db: Database,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    rewards_consumer: EventConsumer,
) -> None:
    await _crash_repeatedly(isolated, identity_db, rewards_db, amqp, crashes=2)


@pytest.mark.drill
@pytest.mark.timeout(600)
async def test_relay_killed_ten_times_after_confirm_before_mark_loses_nothing(
    isolated: devstack.Stack,
    identity_db: Database,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    rewards_consumer: EventConsumer,
) -> None:
    await _crash_repeatedly(isolated, identity_db, rewards_db, amqp, crashes=10)
