"""Retention of the event tables: published outbox rows and inbox rows go after their time.

Every service runs :func:`prune` as a periodic job (``create_service_app`` adds it). It
deletes, in each service's own schema,

- outbox rows **published** before ``outbox_retention_days``. Nothing reads an outbox row
  once the relay has published it: replays come from elsewhere (parked messages keep their
  whole body in the parking queue; identity's webhook replay reads the events it keeps in
  ``identity.webhook_events`` for ``IDENTITY_WEBHOOK_EVENT_RETENTION_DAYS``). Published rows
  are kept only to look at what was sent, so a week (7 days) is enough. Unpublished rows are
  events still owed to the broker and are never deleted, however old.
- inbox rows handled before ``inbox_retention_days``. The inbox is each handler's memory of
  the events it applied: a copy of an event arriving after its rows went is applied again.
  Copies come from the broker's redeliveries and the retry queues (within
  ``retry_delays_ms``), from a relay republishing a batch after a crash between the broker's
  confirm and its mark (when the relay next runs), and from operators replaying parked
  messages (``python -m crm_shared.events.parking replay``) or partners publishing a fact
  again. So the inbox must outlive the longest of those windows: 30 days, and parked messages
  must be replayed within it.

Rows go in batches of ``retention_batch_size``, each one ``DELETE`` in its own short
transaction that takes rows ``FOR UPDATE SKIP LOCKED`` (a row another transaction holds, e.g.
an erasure scrubbing the outbox, is left for the next round), so the job never holds many
locks or waits on anyone's. A round repeats batches until one is not full. The indexes that
make each batch a range scan are ``outbox_published_at`` and ``inbox_handled_at``
(:func:`crm_shared.events.tables.create_retention_indexes`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import text

from crm_shared.db import Database, utcnow
from crm_shared.metrics import events_pruned
from crm_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Table = Literal["outbox", "inbox"]

# Which rows of each table are due once older than the cutoff.
_DUE: dict[Table, str] = {
    "outbox": "published_at IS NOT NULL AND published_at < :cutoff",
    "inbox": "handled_at < :cutoff",
}


@dataclass(frozen=True)
class Pruned:
    """How many rows one round deleted from each table."""

    outbox: int
    inbox: int


async def delete_batch(db: Database, table: Table, *, cutoff: datetime, limit: int) -> int:
    """Delete at most ``limit`` due rows of ``<schema>.<table>`` in one short transaction;
    returns how many went."""
    relation = f"{db.schema}.{table}"
    async with db.session() as session, session.begin():
        result = await session.execute(
            text(
                f"DELETE FROM {relation} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {relation} WHERE {_DUE[table]} "
                "LIMIT :limit FOR UPDATE SKIP LOCKED))"
            ),
            {"cutoff": cutoff, "limit": limit},
        )
    deleted = int(getattr(result, "rowcount", 0) or 0)
    if deleted:
        events_pruned.add(deleted, {"schema": db.schema, "table": table})
    return deleted


async def prune_table(db: Database, table: Table, *, cutoff: datetime, batch_size: int) -> int:
    """Delete every due row of ``table``, batch by batch; returns how many went."""
    total = 0
    while True:
        deleted = await delete_batch(db, table, cutoff=cutoff, limit=batch_size)
        total += deleted
        if deleted < batch_size:
            return total


async def prune(
    db: Database,
    *,
    outbox_retention: timedelta,
    inbox_retention: timedelta,
    batch_size: int,
    now: datetime | None = None,
) -> Pruned:
    """One round of retention: published outbox rows older than ``outbox_retention`` and
    inbox rows older than ``inbox_retention`` go."""
    now = now or utcnow()
    pruned = Pruned(
        outbox=await prune_table(
            db, "outbox", cutoff=now - outbox_retention, batch_size=batch_size
        ),
        inbox=await prune_table(db, "inbox", cutoff=now - inbox_retention, batch_size=batch_size),
    )
    if pruned.outbox or pruned.inbox:
        log.info(
            "retention of %s: %d published outbox rows and %d inbox rows deleted",
            db.schema,
            pruned.outbox,
            pruned.inbox,
        )
    return pruned


async def prune_with(settings: ServiceSettings, db: Database) -> Pruned:
    """One round with the retention of ``settings`` (the body of the periodic job)."""
    return await prune(
        db,
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        inbox_retention=timedelta(days=settings.inbox_retention_days),
        batch_size=settings.retention_batch_size,
    )
