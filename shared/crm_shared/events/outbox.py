"""The transactional outbox: an event is written in the same transaction as its change."""

from __future__ import annotations

import functools
import uuid

from sqlalchemy import TextClause, text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events.envelope import Envelope, Event
from crm_shared.telemetry import current_traceparent


@functools.cache
def _insert(schema: str) -> TextClause:
    """The outbox INSERT of ``schema``, made once (a new ``text`` is parsed on every use)."""
    return text(
        f"INSERT INTO {schema}.outbox (id, type, routing_key, envelope) "
        "VALUES (:id, :type, :routing_key, CAST(:envelope AS jsonb))"
    )


async def record_event(
    session: AsyncSession, event: Event, *, tenant_id: uuid.UUID, subject: str | None
) -> Envelope:
    """Add ``event`` to the session's outbox; it is published only if the transaction commits."""
    schema = session.info["schema"]
    envelope = Envelope.wrap(
        event,
        source=session.info["source"],
        tenant_id=tenant_id,
        subject=subject,
        trace_headers=current_traceparent(),
    )
    await session.execute(
        _insert(schema),
        {
            "id": envelope.id,
            "type": envelope.type,
            "routing_key": envelope.routing_key,
            "envelope": envelope.to_json().decode(),
        },
    )
    return envelope
