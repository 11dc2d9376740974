"""The transactional outbox: an event is written in the same transaction as its change."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events.envelope import Envelope, Event
from crm_shared.telemetry import current_traceparent


async def record_event(
    session: AsyncSession, event: Event, *, tenant_id: uuid.UUID, subject: str | None
) -> Envelope:
    """Add ``event`` to the session's outbox; it is published only if the transaction commits."""
    envelope = outbox_envelope(session, event, tenant_id=tenant_id, subject=subject)
    await session.execute(_insert(session.info["schema"]), outbox_params(envelope))
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
    envelopes = [
        outbox_envelope(session, event, tenant_id=tenant_id, subject=subject)
        for event, subject in events
    ]
    if envelopes:
        await session.execute(
            _insert(session.info["schema"]), [outbox_params(e) for e in envelopes]
        )
    return envelopes


def outbox_envelope(
    session: AsyncSession, event: Event, *, tenant_id: uuid.UUID, subject: str | None
) -> Envelope:
    """The envelope ``record_event`` writes for ``event``: from the session's service, in the
    current trace."""
    return Envelope.wrap(
        event,
        source=session.info["source"],
        tenant_id=tenant_id,
        subject=subject,
        trace_headers=current_traceparent(),
    )


def outbox_insert(schema: str, *, prefix: str = "", select_from: str | None = None) -> str:
    """SQL that adds an outbox row to ``schema``'s outbox, for a statement of one's own.

    The values are the parameters ``outbox_params(envelope, prefix)`` names. With
    ``select_from`` (a table or CTE name) the row is added once per row of it: a
    data-modifying CTE can announce a change only if another CTE made it.
    """
    columns = f"INSERT INTO {schema}.outbox (id, type, routing_key, envelope)"
    values = (
        f"CAST(:{prefix}id AS uuid), CAST(:{prefix}type AS text), "
        f"CAST(:{prefix}routing_key AS text), CAST(:{prefix}envelope AS jsonb)"
    )
    if select_from is None:
        return f"{columns} VALUES ({values})"
    return f"{columns} SELECT {values} FROM {select_from}"


def outbox_params(envelope: Envelope, prefix: str = "") -> dict[str, Any]:
    """The parameters of ``outbox_insert``'s SQL for ``envelope``."""
    return {
        f"{prefix}id": envelope.id,
        f"{prefix}type": envelope.type,
        f"{prefix}routing_key": envelope.routing_key,
        f"{prefix}envelope": envelope.to_json().decode(),
    }


@functools.cache
def _insert(schema: str) -> TextClause:
    """``record_event``'s statement, made once per schema (a new ``text`` is parsed each time)."""
    return text(outbox_insert(schema))
