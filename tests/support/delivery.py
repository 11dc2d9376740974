"""Delivering an event to a service's handlers in-process, through its inbox, as its consumer
does (one transaction per handler, skipped when the inbox has the event already)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import EventConsumer, Registry


def envelope_of(
    event: Event,
    *,
    tenant_id: uuid.UUID,
    source: str = "/crm/test",
    time: datetime | None = None,
) -> Envelope:
    """``event`` in an envelope of ``tenant_id`` (a new event id)."""
    envelope = Envelope.wrap(
        event, source=source, tenant_id=tenant_id, subject=None, trace_headers={}
    )
    return envelope.model_copy(update={"time": time}) if time else envelope


async def deliver(db: Database, handlers: Registry, envelope: Envelope) -> None:
    """Run every handler of the envelope's type, each once per event id (the inbox)."""
    consumer = EventConsumer(
        service="test",
        database=db,
        handlers=handlers,
        retry_delays_ms=[],
        delivery_limit=1,
        prefetch=1,
    )
    for handler in handlers.get(envelope.type, ()):
        await consumer._run_handler(handler, envelope)  # the consumer's own path, minus AMQP


def now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
