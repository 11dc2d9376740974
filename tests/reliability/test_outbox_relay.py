"""The outbox relay loses nothing: a crash between the broker's confirm and the mark leads
to a republish, and the consumer's inbox absorbs the duplicate."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aio_pika
import asyncpg

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange
from tests.support.factories import make_customer, make_tenant
from tests.support.ledger import ledger_points
from tests.support.waiting import eventually


async def test_an_event_survives_a_relay_crash_between_publish_and_mark(
    isolated: devstack.Stack,
    identity_db: Database,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    rewards_consumer: EventConsumer,
) -> None:
    tenant_id = await make_tenant(identity_db)
    customer = await make_customer(identity_db, tenant_id)
    routing_key = f"identity.customer.registered.v1.{tenant_id}"

    # An observer queue counts the copies that cross the broker.
    channel = await amqp.channel()
    observer = await channel.declare_queue(exclusive=True)
    await observer.bind(await declare_exchange(channel, "crm.events"), routing_key=routing_key)

    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{isolated.vhost}"
    dsn = isolated.database_url("identity")
    crash = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crashing_relay", dsn, amqp_url, "identity"],
        cwd=devstack.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crash.returncode == 137, crash.stdout + crash.stderr

    conn = await asyncpg.connect(dsn)
    try:
        unsent = await conn.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE routing_key = $1 AND published_at IS NULL",
            routing_key,
        )
        assert unsent == 1, "the crashed relay must leave the row unmarked"

        relay = OutboxRelay(
            dsn=dsn, schema="identity", exchange=await declare_exchange(channel, "crm.events")
        )
        await relay.publish_batch(conn)
        published = await conn.fetchval(
            "SELECT published_at IS NOT NULL FROM identity.outbox WHERE routing_key = $1",
            routing_key,
        )
        assert published
    finally:
        await conn.close()

    copies = []
    for _ in range(2):
        message = await eventually(lambda: observer.get(fail=False), lambda m: m is not None)
        assert message is not None
        copies.append(message.message_id)
        await message.ack()
    assert copies[0] == copies[1], "both deliveries are the same event"

    # One effect: the welcome points are credited once.
    await eventually(lambda: ledger_points(rewards_db, customer.id), lambda points: points == [100])
    await asyncio.sleep(1.0)
    assert await ledger_points(rewards_db, customer.id) == [100]
