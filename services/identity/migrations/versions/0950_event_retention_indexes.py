"""Indexes for the retention of the event tables: published outbox rows by publication time,
inbox rows by handling time (crm_shared.events.retention deletes along them in batches).

Revision ID: 0950
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from crm_shared.events.tables import create_retention_indexes, drop_retention_indexes

revision: str = "0950"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_retention_indexes(op, "identity")


def downgrade() -> None:
    drop_retention_indexes(op, "identity")
