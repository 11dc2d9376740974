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
