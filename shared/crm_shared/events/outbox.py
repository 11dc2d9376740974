"""The transactional outbox: an event is written in the same transaction as its change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events.envelope import Envelope, Event
from crm_shared.telemetry import current_traceparent


async def record_event(
    session: AsyncSession, event: Event, *, tenant_id: uuid.UUID, subject: str | None
) -> Envelope:
    """Add ``event`` to the session's outbox; it is published only if the transaction commits."""
    (envelope,) = await record_events(session, [(event, subject)], tenant_id=tenant_id)
    return envelope


async def record_events(
    session: AsyncSession,
    events: Sequence[tuple[Event, str | None]],
    *,
    tenant_id: uuid.UUID,
) -> list[Envelope]:
    """Add ``(event, subject)`` pairs to the outbox in one round trip, in their order.

    The batch form of :func:`record_event` for hot paths (ingestion stores hundreds of items
    a transaction): one ``executemany`` instead of a statement per event.
    """
    if not events:
        return []
    schema = session.info["schema"]
    source = session.info["source"]
    trace_headers = current_traceparent()
    envelopes = [
        Envelope.wrap(
            event,
            source=source,
            tenant_id=tenant_id,
            subject=subject,
            trace_headers=trace_headers,
        )
        for event, subject in events
    ]
    await session.execute(
        text(
            f"INSERT INTO {schema}.outbox (id, type, routing_key, envelope) "
            "VALUES (:id, :type, :routing_key, CAST(:envelope AS jsonb))"
        ),
        [
            {
                "id": envelope.id,
                "type": envelope.type,
                "routing_key": envelope.routing_key,
                "envelope": envelope.to_json().decode(),
            }
            for envelope in envelopes
        ],
    )
    return envelopes
