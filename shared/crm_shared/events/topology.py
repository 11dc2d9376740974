"""The broker topology: one topic exchange, and per consuming service its queues.

- ``<service>.events``: durable quorum queue bound to ``<type>.*`` for each handled type;
  a message redelivered ``delivery_limit`` times (it keeps crashing the consumer) is
  dead-lettered by the broker to the parking queue.
- ``<service>.retry.<ms>ms``: one queue per back-off step; a message waits there for its TTL,
  then the broker dead-letters it back to ``<service>.events``.
- ``<service>.parked``: where messages end after their last attempt, with the error kept in
  their headers, for an operator to inspect and replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue


@dataclass(frozen=True)
class QueueNames:
    """The names of one service's queues."""

    service: str

    @property
    def events(self) -> str:
        return f"{self.service}.events"

    @property
    def parked(self) -> str:
        return f"{self.service}.parked"

    def retry(self, delay_ms: int) -> str:
        return f"{self.service}.retry.{delay_ms}ms"


def binding_key(event_type: str) -> str:
    """The binding of a handled type: ``<type>.*`` (every tenant); ``#`` is every type."""
    return event_type if event_type == "#" else f"{event_type}.*"


def tenant_binding_key(event_type: str, tenant_id: object) -> str:
    """The binding of one tenant's events of a type: ``<type>.<tenant id>`` (the routing key
    itself); ``#`` (every type) gives ``#.<tenant id>``. For queues bound only where someone
    listens (identity's webhook and partner queues)."""
    return f"{event_type}.{tenant_id}"


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    """The durable topic exchange all events travel through."""
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


_AT_LEAST_ONCE = {
    "x-queue-type": "quorum",
    # At-least-once dead-lettering (RabbitMQ >= 3.10) needs reject-publish overflow.
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


async def declare_service_queues(
    channel: AbstractChannel,
    *,
    exchange: AbstractExchange,
    names: QueueNames,
    event_types: Iterable[str],
    retry_delays_ms: Iterable[int],
    delivery_limit: int,
) -> AbstractQueue:
    """Declare (idempotently) a service's queues and bindings; returns the main queue."""
    await channel.declare_queue(names.parked, durable=True, arguments={"x-queue-type": "quorum"})
    queue = await channel.declare_queue(
        names.events,
        durable=True,
        arguments={
            **_AT_LEAST_ONCE,
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.parked,
        },
    )
    for delay in retry_delays_ms:
        await channel.declare_queue(
            names.retry(delay),
            durable=True,
            arguments={
                **_AT_LEAST_ONCE,
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.events,
            },
        )
    for event_type in event_types:
        await queue.bind(exchange, routing_key=binding_key(event_type))
    return queue
