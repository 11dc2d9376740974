"""Drill: a consumer killed between its commit and its ack, again and again, keeps balances exact.

What it does: 30 customers' registrations are published; a rewards consumer process with the
real handlers commits the welcome credit of a fresh delivery and dies before acking it, three
times in a row (ten in ``make drills``); each restart gets the unacked message again, and the
inbox must skip it; then a healthy consumer drains the queue. What it counts and prints:
crashes, customers credited, ledger entries, and balances that are not exactly the welcome
points.
Expected: every customer credited once, every balance exactly 100.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events import Envelope
from crm_shared.events.consumer import EventConsumer
from crm_shared.events.topology import QueueNames, declare_exchange, declare_service_queues
from rewards.accounts.handlers import CustomerRegistered
from rewards.handlers import build_handlers
from rewards.settings import RewardsSettings
from tests.conftest import AMQP_BASE
from tests.support.waiting import eventually

CUSTOMERS = 30
WELCOME = 100


async def _ledger(db: Database, tenant_id: uuid.UUID) -> tuple[int, dict[str, int]]:
    """How many welcome entries the tenant has, and each customer account's balance."""
    async with db.session() as session:
        entries = await session.execute(
            text("SELECT count(*) FROM rewards.journal_entries WHERE tenant_id = :t"),
            {"t": tenant_id},
        )
        balances = await session.execute(
            text(
                "SELECT customer_id::text, balance FROM rewards.accounts "
                "WHERE tenant_id = :t AND customer_id IS NOT NULL"
            ),
            {"t": tenant_id},
        )
        return int(entries.scalar_one()), {c: int(b) for c, b in balances}


async def _crash_repeatedly(
    isolated: devstack.Stack,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    crashes: int,
) -> None:
    service = f"drillrw{uuid.uuid4().hex[:6]}"
    names = QueueNames(service)
    settings = RewardsSettings(welcome_points=WELCOME)
    handlers = build_handlers(settings)
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await declare_exchange(channel, "crm.events")
    await declare_service_queues(
        channel,
        exchange=exchange,
        names=names,
        event_types=handlers.keys(),
        retry_delays_ms=[100],
        delivery_limit=50,
    )
    tenant_id = uuid.uuid4()
    for _ in range(CUSTOMERS):
        customer_id = uuid.uuid4()
        envelope = Envelope.wrap(
            CustomerRegistered(customer_id=customer_id, registered_at=datetime.now(UTC)),
            source="/crm/identity",
            tenant_id=tenant_id,
            subject=str(customer_id),
            trace_headers={},
        )
        await exchange.publish(
            aio_pika.Message(envelope.to_json(), message_id=str(envelope.id)),
            routing_key=envelope.routing_key,
        )

    amqp_url = f"{AMQP_BASE}/{isolated.vhost}"
    for _ in range(crashes):
        crash = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.reliability.crashing_consumer",
                isolated.database_url("rewards"),
                amqp_url,
                service,
            ],
            cwd=devstack.REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crash.returncode == 137, crash.stdout + crash.stderr
    crashed, _ = await _ledger(rewards_db, tenant_id)
    assert crashed == crashes, "each crash committed one credit before dying"

    consumer = EventConsumer(
        service=service,
        database=rewards_db,
        handlers=handlers,
        retry_delays_ms=[100],
        delivery_limit=50,
        prefetch=20,
    )
    await consumer.start(amqp, "crm.events")
    try:
        queue = await channel.get_queue(names.events)

        async def drained() -> tuple[int, int]:
            entries, _ = await _ledger(rewards_db, tenant_id)
            declared = await queue.declare()
            return entries, declared.message_count or 0

        await eventually(drained, lambda d: d[0] >= CUSTOMERS and d[1] == 0, timeout=20)
    finally:
        await consumer.stop()

    entries, balances = await _ledger(rewards_db, tenant_id)
    wrong = {c: b for c, b in balances.items() if b != WELCOME}
    print(
        f"\nconsumer drill: crashes={crashes} customers={CUSTOMERS} credited={len(balances)} "
        f"entries={entries} wrong_balances={len(wrong)}"
    )
    assert entries == CUSTOMERS
    assert len(balances) == CUSTOMERS
    assert wrong == {}
    for name in (names.events, names.parked, names.retry(100)):
        await channel.queue_delete(name)


async def test_consumer_killed_between_commit_and_ack_repeatedly_leaves_balances_exact(
    isolated: devstack.Stack, rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    await _crash_repeatedly(isolated, rewards_db, amqp, crashes=3)


@pytest.mark.drill
@pytest.mark.timeout(600)
async def test_consumer_killed_ten_times_between_commit_and_ack_leaves_balances_exact(
    isolated: devstack.Stack, rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    await _crash_repeatedly(isolated, rewards_db, amqp, crashes=10)
