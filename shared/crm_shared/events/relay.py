"""The outbox relay: publishes committed events with publisher confirms, then marks them sent.

A crash between the broker's confirm and the mark republishes the batch on restart: a
duplicate at worst, never a loss; consumers' inboxes absorb duplicates.

Several processes of a service run a relay each, side by side. One of them publishes at a
time: :meth:`OutboxRelay.run` first takes a session advisory lock of the schema's outbox
(the others retry every ``poll_seconds``, and take over within that when the publishing one
dies and its connection closes). So events still leave in ``seq`` order, one customer's
events in the order they were written, however many processes run (two relays claiming
disjoint batches at once would interleave them). Each batch is still claimed with
``FOR UPDATE SKIP LOCKED``, so a relay run by hand beside them (``publish_batch``) never
publishes a row another is publishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from crm_shared.events.tables import outbox_channel
from crm_shared.telemetry import context_from

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

AfterPublish = Callable[[list[int]], Awaitable[None]]


class OutboxRelay:
    """Moves rows from ``<schema>.outbox`` to the events exchange."""

    def __init__(
        self,
        *,
        dsn: str,
        schema: str,
        exchange: aio_pika.abc.AbstractExchange,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        after_publish: AfterPublish | None = None,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._exchange = exchange
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        # A seam for fault drills: runs after the broker confirmed, before rows are marked.
        self._after_publish = after_publish
        self._wake = asyncio.Event()
        # Whether this relay holds the schema's relay lock (it is the one publishing).
        self.leading = False

    async def run(self) -> None:
        """Relay until cancelled, reconnecting to the database after failures."""
        while True:
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay of %s failed; restarting in 1s", self._schema)
                await asyncio.sleep(1.0)

    async def _run_connected(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn)
        try:
            await self._lead(conn)
            await conn.add_listener(outbox_channel(self._schema), self._on_notify)
            while True:
                # Cleared before the batch: a NOTIFY arriving while it is published wakes
                # the next round at once instead of waiting for the poll.
                self._wake.clear()
                published = await self.publish_batch(conn)
                if published == self._batch_size:
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
                except TimeoutError:
                    pass
        finally:
            self.leading = False
            await conn.close(timeout=2)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        """Wait until this relay holds the schema's relay lock (held while ``conn`` lives)."""
        key = f"{self._schema}.outbox-relay"
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
            await asyncio.sleep(self._poll_seconds)
        self.leading = True

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of unsent rows and mark them; returns how many were sent."""
        async with conn.transaction():
            rows = await conn.fetch(
                f"SELECT seq, routing_key, envelope::text AS envelope FROM {self._schema}.outbox "
                "WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            # Confirms are pipelined: all publishes in flight at once, each awaited.
            await asyncio.gather(*(self._publish(r["routing_key"], r["envelope"]) for r in rows))
            seqs = [r["seq"] for r in rows]
            if self._after_publish is not None:
                await self._after_publish(seqs)
            await conn.execute(
                f"UPDATE {self._schema}.outbox SET published_at = now() WHERE seq = ANY($1)",
                seqs,
            )
        return len(rows)

    async def _publish(self, routing_key: str, envelope_json: str) -> None:
        envelope = orjson.loads(envelope_json)
        carrier = {k: envelope[k] for k in ("traceparent", "tracestate") if k in envelope}
        with tracer.start_as_current_span(
            f"{envelope['type']} publish",
            context=context_from(carrier),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": self._exchange.name,
                "messaging.rabbitmq.destination.routing_key": routing_key,
                "messaging.message.id": envelope["id"],
                "crm.outbox.schema": self._schema,
            },
        ):
            await self._exchange.publish(
                aio_pika.Message(
                    body=envelope_json.encode(),
                    content_type="application/cloudevents+json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=envelope["id"],
                    type=envelope["type"],
                    headers=dict(carrier),
                ),
                routing_key=routing_key,
            )
