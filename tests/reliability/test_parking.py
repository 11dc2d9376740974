"""A handler that keeps failing is retried with back-off, then parked with its error, while
other messages keep flowing; an envelope that is not a CloudEvent is parked at once."""

from __future__ import annotations

import uuid

import aio_pika

from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import (
    ERROR_HEADER,
    EventConsumer,
    Handler,
    Rejected,
    registry,
)
from crm_shared.events.parking import ParkedMessage, list_parked, replay_parked
from crm_shared.events.topology import declare_exchange
from tests.support.waiting import eventually


class DrillFailed(Event):
    type = "test.drill.failed.v1"
    n: int


class DrillCounted(Event):
    type = "test.drill.counted.v1"
    n: int


def _envelope(event: Event, tenant_id: uuid.UUID) -> Envelope:
    return Envelope.wrap(
        event, source="/tests", tenant_id=tenant_id, subject=None, trace_headers={}
    )


async def _publish(exchange: aio_pika.abc.AbstractExchange, envelope: Envelope) -> None:
    await exchange.publish(
        aio_pika.Message(envelope.to_json(), message_id=str(envelope.id)),
        routing_key=envelope.routing_key,
    )


async def test_a_handler_failing_three_times_is_parked_while_others_flow(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    attempts: list[int] = []
    counted: list[int] = []

    repaired: list[int] = []

    async def always_fails(event: DrillFailed, **_: object) -> None:
        attempts.append(event.n)
        if not repaired:
            raise RuntimeError(f"drill failure for n={event.n}")

    async def counts(event: DrillCounted, **_: object) -> None:
        counted.append(event.n)

    service = f"drill{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        service=service,
        database=rewards_db,
        handlers=registry(Handler(DrillFailed, always_fails), Handler(DrillCounted, counts)),
        retry_delays_ms=[300, 300],
        delivery_limit=10,
        prefetch=20,
    )
    await consumer.start(amqp, "crm.events")
    try:
        channel = await amqp.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, "crm.events")
        tenant_id = uuid.uuid4()
        await _publish(exchange, _envelope(DrillFailed(n=1), tenant_id))
        for n in range(20):
            await _publish(exchange, _envelope(DrillCounted(n=n), tenant_id))

        async def handled() -> int:
            return len(counted)

        # The good messages are all handled while the bad one waits in its back-off.
        await eventually(handled, lambda c: c == 20, timeout=5)
        assert len(attempts) < 3

        async def parked() -> list[ParkedMessage]:
            return await list_parked(channel, service)

        [listed] = await eventually(parked, lambda found: len(found) == 1, timeout=15)
        assert attempts == [1, 1, 1]
        assert listed.attempts == 3
        assert "drill failure for n=1" in listed.error
        assert listed.type is None or listed.type == DrillFailed.type
        assert sorted(counted) == list(range(20))

        # The operator fixes the cause and replays: the event is handled, the queue empties.
        repaired.append(1)
        assert await replay_parked(channel, service, message_id=listed.message_id) == 1

        async def attempted() -> int:
            return len(attempts)

        await eventually(attempted, lambda n: n == 4)
        assert await list_parked(channel, service) == []
    finally:
        await consumer.stop()


async def test_a_message_that_is_not_an_envelope_is_parked_at_once(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    service = f"drill{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        service=service,
        database=rewards_db,
        handlers=registry(Handler(DrillCounted, _ignore)),
        retry_delays_ms=[300],
        delivery_limit=10,
        prefetch=20,
    )
    await consumer.start(amqp, "crm.events")
    try:
        channel = await amqp.channel()
        exchange = await declare_exchange(channel, "crm.events")
        await exchange.publish(
            aio_pika.Message(b'{"not": "a cloudevent"}'),
            routing_key=f"{DrillCounted.type}.{uuid.uuid4()}",
        )
        parked_queue = await channel.get_queue(consumer.names.parked)
        parked = await eventually(
            lambda: parked_queue.get(fail=False), lambda m: m is not None, timeout=10
        )
        assert parked is not None
        await parked.ack()
        assert "invalid envelope" in str((parked.headers or {})[ERROR_HEADER])
    finally:
        await consumer.stop()


async def _ignore(event: Event, **_: object) -> None:
    return None


async def test_a_rejected_message_is_parked_at_once_with_its_reason_while_others_flow(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    attempts: list[int] = []
    counted: list[int] = []

    async def rejects_odd(event: DrillCounted, **_: object) -> None:
        attempts.append(event.n)
        if event.n % 2:
            raise Rejected(f"n={event.n} is odd")
        counted.append(event.n)

    service = f"drill{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        service=service,
        database=rewards_db,
        handlers=registry(Handler(DrillCounted, rejects_odd)),
        retry_delays_ms=[300, 300],
        delivery_limit=10,
        prefetch=20,
    )
    await consumer.start(amqp, "crm.events")
    try:
        channel = await amqp.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, "crm.events")
        tenant_id = uuid.uuid4()
        await _publish(exchange, _envelope(DrillCounted(n=1), tenant_id))
        malformed = _envelope(DrillCounted(n=0), tenant_id).model_copy(update={"data": {"n": "x"}})
        await _publish(exchange, malformed)
        for n in (2, 4):
            await _publish(exchange, _envelope(DrillCounted(n=n), tenant_id))

        async def parked() -> list[ParkedMessage]:
            return await list_parked(channel, service)

        found = await eventually(parked, lambda found: len(found) == 2, timeout=10)
        errors = sorted(message.error for message in found)
        assert errors[0].startswith("rejected: invalid test.drill.counted.v1 data: n:")
        assert errors[1] == "rejected: n=1 is odd"
        assert all(message.attempts == 1 for message in found)
        assert sorted(counted) == [2, 4]
        assert attempts.count(1) == 1  # never retried
    finally:
        await consumer.stop()


async def test_an_envelope_naming_another_tenant_than_its_routing_key_is_parked_unhandled(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    """A publisher allowed only its own tenant's keys cannot slip in another tenant's data."""
    handled: list[int] = []

    async def count(event: DrillCounted, **_: object) -> None:
        handled.append(event.n)

    service = f"drill{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        service=service,
        database=rewards_db,
        handlers=registry(Handler(DrillCounted, count)),
        retry_delays_ms=[300],
        delivery_limit=10,
        prefetch=20,
    )
    await consumer.start(amqp, "crm.events")
    try:
        channel = await amqp.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, "crm.events")
        own, victim = uuid.uuid4(), uuid.uuid4()
        spoofed = _envelope(DrillCounted(n=1), victim)
        await exchange.publish(
            aio_pika.Message(spoofed.to_json(), message_id=str(spoofed.id)),
            routing_key=f"{spoofed.type}.{own}",
        )
        await _publish(exchange, _envelope(DrillCounted(n=2), own))

        async def parked() -> list[ParkedMessage]:
            return await list_parked(channel, service)

        [found] = await eventually(parked, lambda found: len(found) == 1, timeout=10)
        assert found.error == (
            f"rejected: routing key {spoofed.type}.{own} does not name the envelope's tenant"
        )
        await eventually(lambda: _done(handled), lambda n: n == [2], timeout=10)
    finally:
        await consumer.stop()


async def _done(handled: list[int]) -> list[int]:
    return list(handled)
