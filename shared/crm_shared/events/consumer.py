"""Consuming events: manual acks, an inbox per handler, retries with back-off, then parking.

For each message, each handler registered for its type runs in its own transaction that
first inserts ``(event id, handler)`` into the service's inbox: a duplicate delivery finds the
row and skips the handler, so every handler's effect happens once. The message is acked only
after every handler committed. A failing handler sends the message to the next retry queue
(its back-off), and after the last attempt to the parking queue with the error in its headers.
A handler that knows no retry can help (the message itself is wrong) raises :class:`Rejected`
with the reason: the message is parked at once. Data that does not fit the handler's event
model is rejected the same way.

**Batches** (``batch_size`` > 1): deliveries are gathered, up to ``batch_size`` or what came
within ``batch_wait_ms`` of the first, and handled in delivery order in ONE transaction: the
inbox rows of the whole batch are claimed in one statement, every handler runs, one commit,
then the batch is acked (one ``ack(multiple=True)`` when every earlier delivery of the channel
is settled). A :class:`BatchHandler` takes the consecutive events of its type at once. If
anything fails, the transaction is rolled back and the batch split: the deliveries before the
one that failed commit on their own, the failed one (or, when the failure cannot be pinned to
one delivery, each half of the range it came from) is tried again alone, and a delivery that
fails alone takes the path above (``Rejected``: parked; anything else: retried, then parked).
One batch is handled at a time per consumer, so a process applies a customer's events in
delivery order.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
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


@dataclass(frozen=True)
class BatchHandler(Handler[E]):
    """A reaction that takes consecutive events of its type at once (in a batched consumer):
    ``func(events, envelopes=..., session=...)``, events in delivery order. One event alone
    (an unbatched consumer, or a batch split after a failure) is a list of one."""


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
        batch_size: int = 1,
        batch_wait_ms: float = 5.0,
    ) -> None:
        self.names = QueueNames(service)
        self._db = database
        self._handlers = handlers
        self._retry_delays_ms = list(retry_delays_ms)
        self._delivery_limit = delivery_limit
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        # A batch never waits for more than the broker may send unacked.
        self._batch_size = max(1, min(batch_size, prefetch))
        self._batch_wait = batch_wait_ms / 1000
        self._pending: list[_Delivery] = []
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        # Deliveries taken and not settled yet, by channel: a multiple-ack must not cover one.
        self._unsettled: dict[int, set[int]] = {}

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
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    def _read(self, message: AbstractIncomingMessage) -> tuple[Envelope | None, str]:
        """The delivery's envelope, or None and why it must be parked at once."""
        try:
            envelope = Envelope.from_json(message.body)
        except ValidationError as exc:
            # Not a CloudEvent of ours: no retry can fix it.
            consumer_parked.add(1, {"event_type": message.type or "", "reason": "invalid_envelope"})
            return None, f"invalid envelope: {exc}"
        # The broker lets a publisher use only its own tenant's routing keys (partners'
        # topic permissions); an envelope naming another tenant than its key is refused.
        origin = str((message.headers or {}).get(ROUTING_KEY_HEADER) or message.routing_key or "")
        if origin.startswith(f"{envelope.type}.") and origin != envelope.routing_key:
            consumer_parked.add(1, {"event_type": envelope.type, "reason": "rejected"})
            return None, f"rejected: routing key {origin} does not name the envelope's tenant"
        return envelope, ""

    def _handlers_of(self, envelope: Envelope) -> tuple[Handler[Any], ...]:
        return (*self._handlers.get(envelope.type, ()), *self._handlers.get(ALL_EVENTS, ()))

    def _span(self, envelope: Envelope, context: Context | None = None) -> Any:
        """The delivery's processing span: under the span current where it was received (the
        broker instrumentation's), else in the trace its envelope carries."""
        current = trace.get_current_span(context).get_span_context()
        parent = context if current.is_valid else context_from(envelope.trace_headers)
        return tracer.start_as_current_span(
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
        )

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """Handle one delivery: run its handlers, then ack, retry or park it (batched: returns
        once the batch it joined is settled)."""
        if self._batch_size > 1:
            await self._enqueue(message)
            return
        envelope, reason = self._read(message)
        if envelope is None:
            await self._park(message, reason, attempt=self._attempt(message))
            return
        with self._span(envelope) as span:
            try:
                for handler in self._handlers_of(envelope):
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
            event = _event_of(handler, envelope)
            started = time.perf_counter()
            outcome = "error"
            try:
                with tracer.start_as_current_span(f"handle {handler.name}"):
                    if isinstance(handler, BatchHandler):
                        await handler.func([event], envelopes=[envelope], session=session)
                    else:
                        await handler.func(event, envelope=envelope, session=session)
                outcome = "ok"
            finally:
                handler_duration.record(
                    time.perf_counter() - started,
                    {"event_type": envelope.type, "handler": handler.name, "outcome": outcome},
                )

    # Batches ------------------------------------------------------------------------------

    async def _enqueue(self, message: AbstractIncomingMessage) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsettled.setdefault(id(message.channel), set()).add(message.delivery_tag or 0)
        self._pending.append(_Delivery(message, done, time.monotonic(), otel_context.get_current()))
        self._arrived.set()
        if self._worker is None or self._worker.done():
            # In a context of its own: not inside the span of the delivery that started it.
            self._worker = asyncio.create_task(
                self._work(), name=f"{self.names.events}-batches", context=contextvars.Context()
            )
        await asyncio.shield(done)

    async def _work(self) -> None:
        """Take batches off the pending deliveries, one at a time, until stopped."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if not self._pending:
                continue
            # Wait for a full batch, but no longer than batch_wait after the first arrived.
            while len(self._pending) < self._batch_size:
                left = self._pending[0].arrived + self._batch_wait - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
                self._arrived.clear()
            batch = self._pending[: self._batch_size]
            del self._pending[: self._batch_size]
            if self._pending:
                self._arrived.set()
            try:
                await self._handle_batch(batch)
            except Exception:
                # Unsettled deliveries come back when the channel does (at worst a duplicate).
                log.exception("batch of %d deliveries failed to settle", len(batch))
            finally:
                # A delivery left unsettled stays in _unsettled: no multiple-ack covers it.
                for delivery in batch:
                    if not delivery.done.done():
                        delivery.done.set_result(None)

    def _settled(self, message: AbstractIncomingMessage) -> None:
        tags = self._unsettled.get(id(message.channel))
        if tags is not None:
            tags.discard(message.delivery_tag or 0)
            if not tags:
                del self._unsettled[id(message.channel)]

    async def _handle_batch(self, batch: list[_Delivery]) -> None:
        valid: list[_Delivery] = []
        for delivery in batch:
            envelope, reason = self._read(delivery.message)
            if envelope is None:
                await self._park(delivery.message, reason, attempt=self._attempt(delivery.message))
                self._settled(delivery.message)
            else:
                delivery.envelope = envelope
                valid.append(delivery)
        if valid:
            await self._settle_part(valid)

    async def _settle_part(self, part: list[_Delivery]) -> None:
        """Handle ``part`` in one transaction; on a failure, split it (see the module doc)."""
        failure = await self._handle_together(part)
        if failure is None:
            await self._ack(part)
            return
        low, high, exc = failure
        if len(part) == 1:
            await self._failed(part[0], exc)
            return
        if high - low == 1:
            pieces = [part[:low], part[low:high], part[high:]]
        else:
            middle = (low + high) // 2
            pieces = [part[:low], part[low:middle], part[middle:high], part[high:]]
        for piece in pieces:
            if piece:
                await self._settle_part(piece)

    async def _handle_together(self, part: list[_Delivery]) -> tuple[int, int, Exception] | None:
        """Run every handler of ``part`` in one transaction; None once committed, else the
        range of deliveries the failure came from and the error (rolled back)."""
        calls = [(i, d, h) for i, d in enumerate(part) for h in self._handlers_of(d.envelope_)]
        try:
            async with self._db.session() as session, session.begin():
                claimed = await _claim_many(session, [(d.envelope_, h.name) for _, d, h in calls])
                group: _Group | None = None
                for i, delivery, handler in calls:
                    envelope = delivery.envelope_
                    if (envelope.id, handler.name) not in claimed:
                        log.info("event %s already handled by %s", envelope.id, handler.name)
                        continue
                    claimed.discard((envelope.id, handler.name))
                    try:
                        event = _event_of(handler, envelope)
                    except Rejected as exc:
                        raise _Failed(i, i + 1, exc) from None
                    if isinstance(handler, BatchHandler):
                        if group is not None and group.handler != handler:
                            await self._run_group(session, group)
                            group = None
                        group = group or _Group(handler, i)
                        group.add(i, event, envelope, delivery.context)
                        continue
                    if group is not None:
                        await self._run_group(session, group)
                        group = None
                    await self._run_one(session, i, handler, event, envelope, delivery.context)
                if group is not None:
                    await self._run_group(session, group)
        except _Failed as failed:
            return failed.low, failed.high, failed.error
        except Exception as exc:
            # The commit itself failed: nothing tells which delivery it was.
            return 0, len(part), exc
        return None

    async def _run_one(
        self,
        session: AsyncSession,
        index: int,
        handler: Handler[Any],
        event: Event,
        envelope: Envelope,
        context: Context,
    ) -> None:
        started = time.perf_counter()
        outcome = "error"
        try:
            with (
                self._span(envelope, context),
                tracer.start_as_current_span(f"handle {handler.name}"),
            ):
                await handler.func(event, envelope=envelope, session=session)
            outcome = "ok"
        except Exception as exc:
            raise _Failed(index, index + 1, exc) from exc
        finally:
            handler_duration.record(
                time.perf_counter() - started,
                {"event_type": envelope.type, "handler": handler.name, "outcome": outcome},
            )

    async def _run_group(self, session: AsyncSession, group: _Group) -> None:
        handler = group.handler
        started = time.perf_counter()
        outcome = "error"
        try:
            # A processing span in each delivery's trace (cheap); the group's work under the
            # last one's.
            for envelope, context in zip(group.envelopes[:-1], group.contexts[:-1], strict=True):
                with self._span(envelope, context) as span:
                    span.set_attribute("crm.batch.handled_with", str(group.envelopes[-1].id))
            with (
                self._span(group.envelopes[-1], group.contexts[-1]),
                tracer.start_as_current_span(
                    f"handle {handler.name}", attributes={"crm.batch.size": len(group.events)}
                ),
            ):
                await handler.func(group.events, envelopes=group.envelopes, session=session)
            outcome = "ok"
        except Exception as exc:
            raise _Failed(group.first, group.last + 1, exc) from exc
        finally:
            handler_duration.record(
                time.perf_counter() - started,
                {
                    "event_type": handler.event.type,
                    "handler": handler.name,
                    "outcome": outcome,
                },
            )

    async def _ack(self, part: list[_Delivery]) -> None:
        """Ack a committed part: one multiple-ack when no earlier delivery of its channel is
        still unsettled (parked and retried ones were acked one by one), else one by one."""
        last = part[-1].message
        channel = id(last.channel)
        tags = {d.message.delivery_tag or 0 for d in part}
        top = max(tags)
        if all(id(d.message.channel) == channel for d in part) and not any(
            t < top and t not in tags for t in self._unsettled.get(channel, ())
        ):
            highest = next(d.message for d in part if (d.message.delivery_tag or 0) == top)
            await highest.ack(multiple=True)
        else:
            for delivery in part:
                await delivery.message.ack()
        for delivery in part:
            self._settled(delivery.message)
            consumer_handled.add(1, {"event_type": delivery.envelope_.type})

    async def _failed(self, delivery: _Delivery, exc: Exception) -> None:
        """A delivery that failed alone: park it (``Rejected``) or retry it."""
        envelope, message = delivery.envelope_, delivery.message
        with self._span(envelope, delivery.context) as span:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR))
        if isinstance(exc, Rejected):
            log.warning("parking %s at once: %s", message.message_id, exc.reason)
            consumer_parked.add(1, {"event_type": envelope.type, "reason": "rejected"})
            await self._park(message, f"rejected: {exc.reason}", attempt=self._attempt(message))
        else:
            consumer_failed.add(1, {"event_type": envelope.type})
            await self._retry_or_park(message, exc)
        self._settled(message)

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


@dataclass
class _Delivery:
    message: AbstractIncomingMessage
    done: asyncio.Future[None]
    arrived: float
    context: Context
    envelope: Envelope | None = None

    @property
    def envelope_(self) -> Envelope:
        assert self.envelope is not None
        return self.envelope


@dataclass
class _Group:
    """Consecutive events of one batch handler, waiting to be handled together."""

    handler: Handler[Any]
    first: int
    last: int = 0
    events: list[Event] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)

    def add(self, index: int, event: Event, envelope: Envelope, context: Context) -> None:
        self.last = index
        self.events.append(event)
        self.envelopes.append(envelope)
        self.contexts.append(context)


class _Failed(Exception):
    """A batch failed at deliveries ``[low, high)`` of its part with ``error``."""

    def __init__(self, low: int, high: int, error: Exception) -> None:
        super().__init__(low, high, error)
        self.low, self.high, self.error = low, high, error


def _event_of(handler: Handler[Any], envelope: Envelope) -> Event:
    """The envelope's data as the handler's event; ``Rejected`` when it does not fit."""
    try:
        event: Event = handler.event.model_validate(envelope.data)
    except ValidationError as exc:
        raise Rejected(f"invalid {envelope.type} data: {_first_error(exc)}") from None
    return event


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


async def _claim_many(
    session: AsyncSession, pairs: Sequence[tuple[Envelope, str]]
) -> set[tuple[uuid.UUID, str]]:
    """Record every ``(event, handler)`` in the inbox in one statement; the pairs that were
    not there yet (a pair twice in ``pairs`` is claimed once)."""
    if not pairs:
        return set()
    schema = session.info["schema"]
    result = await session.execute(
        text(
            f"INSERT INTO {schema}.inbox (event_id, handler, event_type) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:handlers AS text[]), "
            "CAST(:types AS text[])) ON CONFLICT DO NOTHING RETURNING event_id, handler"
        ),
        {
            "ids": [envelope.id for envelope, _ in pairs],
            "handlers": [handler for _, handler in pairs],
            "types": [envelope.type for envelope, _ in pairs],
        },
    )
    return {(row[0], row[1]) for row in result.all()}
