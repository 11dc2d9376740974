"""Pending triggers: trigger events of a social profile no customer is linked to yet, kept
until a link pays them as the customer (or they grow too old).

Revision ID: 0901
Revises: 0900
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0901"
down_revision: str | Sequence[str] | None = "0900"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_triggers",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("platform_user_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="rewards",
    )
    # A link (and an erasure) reads one profile's; pruning reads the oldest.
    op.create_index(
        "pending_triggers_profile",
        "pending_triggers",
        ["tenant_id", "channel", "platform_user_id", "occurred_at"],
        schema="rewards",
    )
    op.create_index(
        "pending_triggers_occurred", "pending_triggers", ["occurred_at"], schema="rewards"
    )


def downgrade() -> None:
    op.drop_table("pending_triggers", schema="rewards")
