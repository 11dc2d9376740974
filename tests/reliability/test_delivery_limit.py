"""Drill: a poison message that crashes its consumer before any retry can be recorded is parked
by the broker after its delivery limit, while other traffic flows.

What it does: a consumer whose process "dies" on one message (it returns the message to the
queue unacked, as a crash or a lost connection does, so no retry header is ever written) gets
that message and 30 good ones. What it counts and prints: good messages handled, deliveries
of the poison message, whether it ended in the parking queue. Expected: every good message
handled once, the poison one delivered ``delivery_limit`` times and then parked by the broker
(the quorum queue's ``x-delivery-limit``), not redelivered forever.
"""

from __future__ import annotations

import uuid

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import EventConsumer, Handler, registry
from crm_shared.events.topology import declare_exchange
from tests.support.waiting import eventually

LIMIT = 3


class DrillItem(Event):
    type = "test.drill.item.v1"
    n: int


class CrashesOnPoison(EventConsumer):
    """Returns the poison message unacked each time, as a consumer that crashes on it would."""

    poison_deliveries = 0

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        if b'"n":-1' in message.body.replace(b" ", b""):
            self.poison_deliveries += 1
            await message.nack(requeue=True)
            return
        await super().on_message(message)


async def test_a_message_that_crashes_its_consumer_is_parked_at_the_delivery_limit(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    handled: list[int] = []

    async def count(event: DrillItem, **_: object) -> None:
        handled.append(event.n)

    service = f"drill{uuid.uuid4().hex[:6]}"
    consumer = CrashesOnPoison(
        service=service,
        database=rewards_db,
        handlers=registry(Handler(DrillItem, count)),
        retry_delays_ms=[200],
        delivery_limit=LIMIT,
        prefetch=10,
    )
    await consumer.start(amqp, "crm.events")
    try:
        channel = await amqp.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, "crm.events")
        tenant_id = uuid.uuid4()
        for n in [-1, *range(30)]:
            envelope = Envelope.wrap(
                DrillItem(n=n), source="/tests", tenant_id=tenant_id, subject=None, trace_headers={}
            )
            await exchange.publish(
                aio_pika.Message(envelope.to_json(), message_id=str(envelope.id)),
                routing_key=envelope.routing_key,
            )
        parked_queue = await channel.get_queue(consumer.names.parked)
        parked = await eventually(
            lambda: parked_queue.get(fail=False), lambda m: m is not None, timeout=20
        )
        assert parked is not None
        await parked.ack()

        async def good() -> int:
            return len(handled)

        await eventually(good, lambda n: n == 30, timeout=10)
        print(
            f"\ndelivery-limit drill: good_handled={len(handled)} "
            f"poison_deliveries={consumer.poison_deliveries} parked=1"
        )
        assert sorted(handled) == list(range(30))
        assert b'"n":-1' in parked.body.replace(b" ", b"")
        # The first delivery plus LIMIT redeliveries, then the broker dead-letters it.
        assert consumer.poison_deliveries == LIMIT + 1
    finally:
        await consumer.stop()
        channel = await amqp.channel()
        for name in (consumer.names.events, consumer.names.parked, consumer.names.retry(200)):
            await channel.queue_delete(name)
