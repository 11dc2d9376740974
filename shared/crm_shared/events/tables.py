"""The outbox and inbox tables, created by each service's own migrations in its own schema."""

from __future__ import annotations

from typing import Any


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"{schema}_outbox"


def create_event_tables(op: Any, schema: str) -> None:
    """Create ``<schema>.outbox`` (with its NOTIFY trigger) and ``<schema>.inbox``."""
    statements = [
        f"""
        CREATE TABLE {schema}.outbox (
            seq bigserial PRIMARY KEY,
            id uuid NOT NULL UNIQUE,
            type text NOT NULL,
            routing_key text NOT NULL,
            envelope jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz
        )""",
        f"CREATE INDEX outbox_unpublished ON {schema}.outbox (seq) WHERE published_at IS NULL",
        f"""
        CREATE FUNCTION {schema}.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{outbox_channel(schema)}', '');
            RETURN NULL;
        END $$""",
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
            FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_outbox()""",
        f"""
        CREATE TABLE {schema}.inbox (
            event_id uuid NOT NULL,
            handler text NOT NULL,
            event_type text NOT NULL,
            handled_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (event_id, handler)
        )""",
    ]
    for statement in statements:
        op.execute(statement)


def drop_event_tables(op: Any, schema: str) -> None:
    """Undo ``create_event_tables``."""
    op.execute(f"DROP TABLE {schema}.inbox")
    op.execute(f"DROP TABLE {schema}.outbox")
    op.execute(f"DROP FUNCTION {schema}.notify_outbox()")


# The indexes the retention job (crm_shared.events.retention) deletes along: without them each
# of its batches would read the whole table to find the rows that are due.
RETENTION_INDEXES = {
    "outbox_published_at": "outbox (published_at) WHERE published_at IS NOT NULL",
    "inbox_handled_at": "inbox (handled_at)",
}


def create_retention_indexes(op: Any, schema: str) -> None:
    """Create the retention job's indexes on ``<schema>.outbox`` and ``<schema>.inbox``.

    ``CONCURRENTLY``, outside the migration's transaction: both tables may be large by the
    time this runs (they were never pruned before), and a plain ``CREATE INDEX`` would block
    every write to them (every change of the service writes its outbox) while it builds. An
    index a failed concurrent build left invalid is dropped and built again on the next run.
    """
    with op.get_context().autocommit_block():
        for name, definition in RETENTION_INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {schema}.{definition}")


def drop_retention_indexes(op: Any, schema: str) -> None:
    """Undo ``create_retention_indexes``."""
    with op.get_context().autocommit_block():
        for name in RETENTION_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")
