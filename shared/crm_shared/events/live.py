"""Live events for GraphQL subscriptions: the broker's events fanned out inside one process.

Durable consumers (``consumer.py``) are for effects that must happen once. Consoles watching
a customer need something else: while someone is subscribed, each event of interest should
reach them promptly, and when nobody is, nothing should pile up. So each process has one
exclusive, auto-deleted queue (it disappears with the connection), bound only to the routing
keys (``<type>.<tenant id>``) that current subscribers need, consumed without acks. Delivery is
at most once by design: a subscriber that reconnects re-reads the current state through a
query; the record of what happened stays in the owning service and its outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from crm_shared.events.envelope import Envelope, routing_key_for
from crm_shared.events.topology import declare_exchange

log = logging.getLogger(__name__)

Match = Callable[[Envelope], bool]


class LiveEvents:
    """One process's subscription to the broker, shared by all its live subscribers."""

    def __init__(self, service: str, *, buffer: int = 256) -> None:
        self.service = service
        self.buffer = buffer
        self._queue: AbstractQueue | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._bound: Counter[str] = Counter()
        self._bind_lock = asyncio.Lock()
        self._subscribers: dict[str, set[asyncio.Queue[Envelope]]] = {}

    async def start(self, connection: AbstractRobustConnection, exchange: str) -> None:
        """Declare this process's exclusive queue and start consuming it."""
        channel = await connection.channel()
        self._exchange = await declare_exchange(channel, exchange)
        self._queue = await channel.declare_queue(
            f"{self.service}.live.{uuid.uuid4().hex[:12]}",
            exclusive=True,
            auto_delete=True,
            arguments={"x-queue-type": "classic", "x-max-length": 10_000},
        )
        await self._queue.consume(self._deliver, no_ack=True)

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.from_json(message.body)
        except ValueError:
            log.warning("live event %s is not an envelope; ignored", message.routing_key)
            return
        for inbox in self._subscribers.get(envelope.routing_key, ()):
            if inbox.full():  # a slow subscriber loses its oldest update, never blocks others
                inbox.get_nowait()
            inbox.put_nowait(envelope)

    async def subscribe(
        self, *, event_types: Iterable[str], tenant_id: uuid.UUID, match: Match | None = None
    ) -> AsyncIterator[Envelope]:
        """The tenant's events of ``event_types`` (those ``match`` accepts) as they happen."""
        if self._queue is None or self._exchange is None:
            raise RuntimeError("live events are not started (the service has no broker link)")
        keys = sorted({routing_key_for(t, tenant_id) for t in event_types})
        inbox: asyncio.Queue[Envelope] = asyncio.Queue(self.buffer)
        for key in keys:
            self._subscribers.setdefault(key, set()).add(inbox)
        try:
            await self._bind(keys)
            while True:
                envelope = await inbox.get()
                if match is None or match(envelope):
                    yield envelope
        finally:
            for key in keys:
                subscribers = self._subscribers.get(key)
                if subscribers is not None:
                    subscribers.discard(inbox)
                    if not subscribers:
                        del self._subscribers[key]
            with contextlib.suppress(Exception):  # the connection may be gone at shutdown
                await asyncio.shield(self._unbind(keys))

    async def _bind(self, keys: list[str]) -> None:
        assert self._queue is not None and self._exchange is not None
        async with self._bind_lock:
            for key in keys:
                if self._bound[key] == 0:
                    await self._queue.bind(self._exchange, routing_key=key)
                self._bound[key] += 1

    async def _unbind(self, keys: list[str]) -> None:
        assert self._queue is not None and self._exchange is not None
        async with self._bind_lock:
            for key in keys:
                self._bound[key] -= 1
                if self._bound[key] <= 0:
                    del self._bound[key]
                    await self._queue.unbind(self._exchange, routing_key=key)
