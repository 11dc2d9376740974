"""Drill: customers registered in identity stream through the outbox, a private RabbitMQ node
and rewards' consumer into rewards' ledger while that node is restarted and killed.

What it does: a producer registers customers at a steady rate (each one an
``identity.customer.registered.v1`` in identity's outbox); the real outbox relay and the real
rewards consumer run in-process against a broker of the test's own; meanwhile the broker is
killed with SIGKILL and started again (``make test``: 200 events, one kill, to stay near
30 s; ``make drills``: 10,000 events, restarted cleanly twice and killed once).

What it counts and prints: events produced, welcome credits in the ledger, customers
credited more than once, the maximum lag from the event's time to its ledger entry.
Expected: lost 0, applied twice 0.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import aio_pika
import pytest
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange
from identity.customers.models import CustomerCreate
from identity.customers.service import register_customer
from rewards.handlers import build_handlers
from rewards.settings import RewardsSettings
from tests.support.factories import make_tenant
from tests.support.private_broker import PrivateBroker

WELCOME = 100


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    """A RabbitMQ node of this test's own (never the shared one)."""
    with PrivateBroker() as node:
        yield node


@pytest.fixture
async def pipeline(
    broker: PrivateBroker, identity_db: Database, rewards_db: Database
) -> AsyncIterator[None]:
    """Identity's relay and rewards' consumer, as the services wire them, on the private node."""
    connection = await aio_pika.connect_robust(broker.url, reconnect_interval=0.5)
    channel = await connection.channel(publisher_confirms=True)
    relay = OutboxRelay(
        dsn=identity_db.dsn,
        schema="identity",
        exchange=await declare_exchange(channel, "crm.events"),
        poll_seconds=0.2,
    )
    consumer = EventConsumer(
        service="rewards",
        database=rewards_db,
        handlers=build_handlers(RewardsSettings(welcome_points=WELCOME)),
        retry_delays_ms=[100, 200],
        delivery_limit=20,
        prefetch=200,
    )
    await consumer.start(connection, "crm.events")
    relay_task = asyncio.create_task(relay.run())
    yield
    relay_task.cancel()
    await asyncio.gather(relay_task, return_exceptions=True)
    await consumer.stop()
    await connection.close()


async def _produce(db: Database, tenant_id: uuid.UUID, total: int, per_second: float) -> None:
    """Register ``total`` customers in batches of 10, at about ``per_second``."""
    started = time.monotonic()
    for done in range(0, total, 10):
        async with db.session() as session, session.begin():
            for i in range(done, min(done + 10, total)):
                await register_customer(
                    session=session,
                    tenant_id=tenant_id,
                    data=CustomerCreate(name=f"Drill {i}", email=f"d{i}-{uuid.uuid4().hex}@x.io"),
                )
        ahead = started + (done + 10) / per_second - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


async def _credits(db: Database, tenant_id: uuid.UUID) -> dict[str, list[datetime]]:
    """The welcome credits of the tenant: their times, by customer."""
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT customer_id::text, created_at FROM rewards.journal_entries "
                "WHERE tenant_id = :t AND kind = 'earn' AND reason = 'welcome'"
            ),
            {"t": tenant_id},
        )
        by_customer: dict[str, list[datetime]] = {}
        for customer_id, created_at in rows:
            by_customer.setdefault(customer_id, []).append(created_at)
        return by_customer


async def _event_times(db: Database, tenant_id: uuid.UUID) -> dict[str, datetime]:
    """When each registration event of the tenant happened, by customer."""
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT envelope->>'subject', (envelope->>'time')::timestamptz "
                "FROM identity.outbox WHERE envelope->>'tenantid' = :t "
                "AND type = 'identity.customer.registered.v1'"
            ),
            {"t": str(tenant_id)},
        )
        return {str(subject): at for subject, at in rows}


async def _stream_through_faults(
    broker: PrivateBroker,
    identity_db: Database,
    rewards_db: Database,
    *,
    events: int,
    faults: tuple[str, ...],
    per_second: float,
) -> None:
    tenant_id = await make_tenant(identity_db)
    producing = asyncio.create_task(_produce(identity_db, tenant_id, events, per_second))
    started = time.monotonic()
    stretch = events / per_second
    for n, fault in enumerate(faults, start=1):
        # Spread the faults over the time the producer streams.
        await asyncio.sleep(max(0.0, started + stretch * n / (len(faults) + 1) - time.monotonic()))
        if fault == "kill":
            await asyncio.to_thread(broker.kill)
            await asyncio.to_thread(broker.start)
        else:
            await asyncio.to_thread(broker.restart)
    await producing

    deadline = time.monotonic() + 60 + events / 200
    credits = await _credits(rewards_db, tenant_id)
    while len(credits) < events and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        credits = await _credits(rewards_db, tenant_id)
    await asyncio.sleep(1.0)  # let any late duplicate land before counting
    credits = await _credits(rewards_db, tenant_id)

    times = await _event_times(identity_db, tenant_id)
    lost = len(set(times) - set(credits))
    twice = sum(1 for at in credits.values() if len(at) > 1)
    lags = [(min(credits[c]) - t).total_seconds() for c, t in times.items() if c in credits]
    print(
        f"\nbroker drill: faults={','.join(faults)} produced={len(times)} "
        f"credited={len(credits)} entries={sum(map(len, credits.values()))} lost={lost} "
        f"applied_twice={twice} max_lag={max(lags, default=0):.2f}s"
    )
    assert len(times) == events
    assert lost == 0
    assert twice == 0


async def test_events_stream_without_loss_or_double_credit_through_a_broker_kill(
    broker: PrivateBroker, identity_db: Database, rewards_db: Database, pipeline: None
) -> None:
    await _stream_through_faults(
        broker, identity_db, rewards_db, events=200, faults=("kill",), per_second=25
    )


@pytest.mark.drill
@pytest.mark.timeout(600)
async def test_10000_events_stream_through_two_broker_restarts_and_a_kill(
    broker: PrivateBroker, identity_db: Database, rewards_db: Database, pipeline: None
) -> None:
    await _stream_through_faults(
        broker,
        identity_db,
        rewards_db,
        events=10_000,
        faults=("restart", "restart", "kill"),
        per_second=100,
    )
