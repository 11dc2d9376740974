"""Consuming events: manual acks, an inbox per handler, retries with back-off, then parking.

For each message, each handler registered for its type runs in its own transaction that
first inserts ``(event id, handler)`` into the service's inbox: a duplicate delivery finds the
row and skips the handler, so every handler's effect happens once. The message is acked only
after every handler committed. A failing handler sends the message to the next retry queue
(its back-off), and after the last attempt to the parking queue with the error in its headers.
A handler that knows no retry can help (the message itself is wrong) raises :class:`Rejected`
with the reason: the message is parked at once. Data that does not fit the handler's event
model is rejected the same way.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ConfigDict, ValidationError
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database
from crm_shared.events.envelope import Envelope, Event
from crm_shared.events.topology import QueueNames, declare_exchange, declare_service_queues
from crm_shared.metrics import (
    consumer_failed,
    consumer_handled,
    consumer_parked,
    consumer_retried,
    handler_duration,
)
from crm_shared.telemetry import context_from

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

E = TypeVar("E", bound=Event)

ATTEMPT_HEADER = "x-crm-attempt"
# The registry key of a handler that reacts to every event type (its queue is bound to ``#``).
ALL_EVENTS = "#"
ERROR_HEADER = "x-crm-error"
ROUTING_KEY_HEADER = "x-crm-routing-key"


class Rejected(Exception):
    """Raised by a handler: the message can never be handled; park it now with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Handler(Generic[E]):
    """One reaction to one event type: ``func(event, envelope=..., session=...)``."""

    event: type[E]
    func: Callable[..., Awaitable[None]]

    @property
    def name(self) -> str:
        """The handler's inbox key: its function's dotted name (settings bound by partial)."""
        func = self.func.func if isinstance(self.func, partial) else self.func
        return f"{func.__module__}.{func.__qualname__}"


Registry = Mapping[str, Sequence[Handler[Any]]]


class AnyEvent(Event):
    """Any event at all, its data kept whole: for handlers of every type (``ALL_EVENTS``)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type = ALL_EVENTS


def registry(*handlers: Handler[Any]) -> dict[str, list[Handler[Any]]]:
    """Group handlers by the event type they react to."""
    by_type: dict[str, list[Handler[Any]]] = {}
    for handler in handlers:
        by_type.setdefault(handler.event.type, []).append(handler)
    return by_type


class EventConsumer:
    """Consumes a service's queue and dispatches to its handlers.

    ``service`` names the queues (:class:`QueueNames`); a service with a second queue (e.g.
    identity's webhook deliveries, bound to every type) runs a second consumer named
    ``<service>.<purpose>``.
    """

    def __init__(
        self,
        *,
        service: str,
        database: Database,
        handlers: Registry,
        retry_delays_ms: Sequence[int],
        delivery_limit: int,
        prefetch: int,
    ) -> None:
        self.names = QueueNames(service)
        self._db = database
        self._handlers = handlers
        self._retry_delays_ms = list(retry_delays_ms)
        self._delivery_limit = delivery_limit
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None

    async def start(self, connection: aio_pika.abc.AbstractRobustConnection, exchange: str) -> None:
        """Declare the topology and start consuming (returns once consuming)."""
        self._channel = channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        events_exchange = await declare_exchange(channel, exchange)
        queue = await declare_service_queues(
            channel,
            exchange=events_exchange,
            names=self.names,
            event_types=self._handlers.keys(),
            retry_delays_ms=self._retry_delays_ms,
            delivery_limit=self._delivery_limit,
        )
        await queue.consume(self.on_message)

    async def stop(self) -> None:
        """Stop consuming; unacked messages return to the queue."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """Handle one delivery: run its handlers, then ack, retry or park it."""
        try:
            envelope = Envelope.from_json(message.body)
        except ValidationError as exc:
            # Not a CloudEvent of ours: no retry can fix it.
            consumer_parked.add(1, {"event_type": message.type or "", "reason": "invalid_envelope"})
            await self._park(message, f"invalid envelope: {exc}", attempt=self._attempt(message))
            return
        # The broker lets a publisher use only its own tenant's routing keys (partners'
        # topic permissions); an envelope naming another tenant than its key is refused.
        origin = str((message.headers or {}).get(ROUTING_KEY_HEADER) or message.routing_key or "")
        if origin.startswith(f"{envelope.type}.") and origin != envelope.routing_key:
            consumer_parked.add(1, {"event_type": envelope.type, "reason": "rejected"})
            reason = f"rejected: routing key {origin} does not name the envelope's tenant"
            await self._park(message, reason, attempt=self._attempt(message))
            return
        current = trace.get_current_span().get_span_context()
        parent = None if current.is_valid else context_from(envelope.trace_headers)
        with tracer.start_as_current_span(
            f"{envelope.type} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.message.id": str(envelope.id),
                "messaging.destination.name": self.names.events,
                "crm.tenant.id": str(envelope.tenantid),
            },
        ) as span:
            try:
                for handler in (
                    *self._handlers.get(envelope.type, ()),
                    *self._handlers.get(ALL_EVENTS, ()),
                ):
                    await self._run_handler(handler, envelope)
            except Rejected as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR))
                log.warning("parking %s at once: %s", message.message_id, exc.reason)
                consumer_parked.add(1, {"event_type": envelope.type, "reason": "rejected"})
                await self._park(message, f"rejected: {exc.reason}", attempt=self._attempt(message))
                return
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR))
                consumer_failed.add(1, {"event_type": envelope.type})
                await self._retry_or_park(message, exc)
                return
        await message.ack()
        consumer_handled.add(1, {"event_type": envelope.type})

    async def _run_handler(self, handler: Handler[Any], envelope: Envelope) -> None:
        async with self._db.session() as session, session.begin():
            if not await _claim(session, envelope, handler.name):
                log.info("event %s already handled by %s", envelope.id, handler.name)
                return
            try:
                event = handler.event.model_validate(envelope.data)
            except ValidationError as exc:
                raise Rejected(f"invalid {envelope.type} data: {_first_error(exc)}") from None
            started = time.perf_counter()
            outcome = "error"
            try:
                with tracer.start_as_current_span(f"handle {handler.name}"):
                    await handler.func(event, envelope=envelope, session=session)
                outcome = "ok"
            finally:
                handler_duration.record(
                    time.perf_counter() - started,
                    {"event_type": envelope.type, "handler": handler.name, "outcome": outcome},
                )

    @staticmethod
    def _attempt(message: AbstractIncomingMessage) -> int:
        value = (message.headers or {}).get(ATTEMPT_HEADER, 1)
        return int(value) if isinstance(value, int | str) else 1

    async def _retry_or_park(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        attempt = self._attempt(message)
        error = "".join(traceback.format_exception_only(exc)).strip()
        if attempt > len(self._retry_delays_ms):
            log.error("parking %s after %d attempts: %s", message.message_id, attempt, error)
            reason = {"event_type": message.type or "", "reason": "attempts_exhausted"}
            consumer_parked.add(1, reason)
            await self._park(message, error, attempt=attempt)
            return
        delay = self._retry_delays_ms[attempt - 1]
        consumer_retried.add(1, {"event_type": message.type or "", "attempt": attempt})
        log.warning(
            "retrying %s in %d ms (attempt %d): %s", message.message_id, delay, attempt, error
        )
        await self._forward(message, self.names.retry(delay), attempt=attempt + 1, error=error)

    async def _park(self, message: AbstractIncomingMessage, error: str, *, attempt: int) -> None:
        await self._forward(message, self.names.parked, attempt=attempt, error=error)

    async def _forward(
        self, message: AbstractIncomingMessage, queue: str, *, attempt: int, error: str
    ) -> None:
        """Publish a copy (confirmed) to ``queue``, then ack the original: at worst a duplicate."""
        assert self._channel is not None
        headers = dict(message.headers or {})
        headers.update(
            {
                ATTEMPT_HEADER: attempt,
                ERROR_HEADER: error[:2000],
                "x-crm-failed-at": datetime.now(UTC).isoformat(),
                # Where it was first published (a retry comes back on the service's queue).
                ROUTING_KEY_HEADER: headers.get(ROUTING_KEY_HEADER) or message.routing_key or "",
            }
        )
        await self._channel.default_exchange.publish(copy_of(message, headers), routing_key=queue)
        await message.ack()


def _first_error(exc: ValidationError) -> str:
    """The first problem of ``exc`` as ``field: message`` (what an operator needs to see)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "data"
    return f"{where}: {first['msg']}"


def copy_of(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent copy of ``message`` with ``headers``, to retry, park or replay it."""
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
    )


async def _claim(session: AsyncSession, envelope: Envelope, handler: str) -> bool:
    """Record ``(event, handler)`` in the inbox; False when it was already there."""
    schema = session.info["schema"]
    result = await session.execute(
        text(
            f"INSERT INTO {schema}.inbox (event_id, handler, event_type) "
            "VALUES (:id, :handler, :type) ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        {"id": envelope.id, "handler": handler, "type": envelope.type},
    )
    return result.first() is not None
