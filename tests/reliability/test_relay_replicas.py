"""Relays of several processes side by side publish every outbox row exactly once, in order:
one publishes at a time (the schema's relay lock), another takes over when it stops, and
batches claimed by hand at once (``FOR UPDATE SKIP LOCKED``) never overlap."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aio_pika
import asyncpg

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange
from tests.support.factories import make_customer, make_tenant
from tests.support.waiting import eventually


async def _observer(
    amqp: aio_pika.abc.AbstractRobustConnection, tenant_id: uuid.UUID
) -> tuple[aio_pika.abc.AbstractQueue, aio_pika.abc.AbstractExchange]:
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await declare_exchange(channel, "crm.events")
    observer = await channel.declare_queue(exclusive=True)
    await observer.bind(exchange, routing_key=f"identity.customer.registered.v1.{tenant_id}")
    return observer, exchange


async def _drain(queue: aio_pika.abc.AbstractQueue) -> list[str]:
    ids = []
    while (message := await queue.get(fail=False)) is not None:
        ids.append(str(message.message_id))
        await message.ack()
    return ids


async def _written(dsn: str, tenant_id: uuid.UUID) -> list[str]:
    """The tenant's registrations in outbox order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text FROM identity.outbox WHERE routing_key = $1 ORDER BY seq",
            f"identity.customer.registered.v1.{tenant_id}",
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def test_two_relays_publish_every_row_once_in_order_and_one_takes_over(
    isolated: devstack.Stack,
    identity_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    tenant_id = await make_tenant(identity_db)
    observer, exchange = await _observer(amqp, tenant_id)
    dsn = isolated.database_url("identity")
    relays = [
        OutboxRelay(dsn=dsn, schema="identity", exchange=exchange, poll_seconds=0.2)
        for _ in range(2)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    received: list[str] = []
    try:
        # Written by four writers at once while both relays run.
        async def write(n: int) -> None:
            for _ in range(n):
                await make_customer(identity_db, tenant_id)

        await asyncio.gather(*(write(15) for _ in range(4)))

        async def drained() -> int:
            received.extend(await _drain(observer))
            return len(received)

        await eventually(drained, lambda n: n >= 60, timeout=30)
        assert sum(relay.leading for relay in relays) == 1
        leader = next(i for i, relay in enumerate(relays) if relay.leading)

        # The publishing one stops (its connection and lock go); the other takes over.
        tasks[leader].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[leader]
        await write(20)
        await eventually(drained, lambda n: n >= 80, timeout=30)
        assert relays[1 - leader].leading
        await asyncio.sleep(0.5)
        await drained()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    written = await _written(dsn, tenant_id)
    assert len(written) == 80
    assert sorted(received) == sorted(written) and len(set(received)) == 80, "each row once"
    # Rows written one after another (one writer, like one customer's events) leave in that
    # order; rows of concurrent writers may commit in another order than their seq.
    sequential = written[-20:]
    assert [r for r in received if r in set(sequential)] == sequential


async def test_batches_claimed_at_once_never_overlap(
    isolated: devstack.Stack,
    identity_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    tenant_id = await make_tenant(identity_db)
    observer, exchange = await _observer(amqp, tenant_id)
    for _ in range(40):
        await make_customer(identity_db, tenant_id)
    dsn = isolated.database_url("identity")
    connections = [await asyncpg.connect(dsn) for _ in range(2)]
    try:
        relays = [
            OutboxRelay(dsn=dsn, schema="identity", exchange=exchange, batch_size=7)
            for _ in range(2)
        ]

        async def publish_all(relay: OutboxRelay, conn: asyncpg.Connection) -> int:
            total = 0
            while published := await relay.publish_batch(conn):
                total += published
            return total

        counts = await asyncio.gather(
            *(publish_all(r, c) for r, c in zip(relays, connections, strict=True))
        )
    finally:
        for conn in connections:
            await conn.close()
    assert sum(counts) >= 40  # other tests' unsent rows may be published too
    received: list[str] = []

    async def drained() -> int:
        received.extend(await _drain(observer))
        return len(received)

    await eventually(drained, lambda n: n >= 40, timeout=30)
    await asyncio.sleep(0.5)
    await drained()
    assert sorted(received) == sorted(await _written(dsn, tenant_id))
    assert len(set(received)) == len(received) == 40
