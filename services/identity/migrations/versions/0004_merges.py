"""Merging duplicate customers, and undoing it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("merged_into_id", sa.Uuid(), sa.ForeignKey(f"{S}.customers.id")),
        schema=S,
    )
    op.create_table(
        "customer_merges",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey(f"{S}.tenants.id"), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), sa.ForeignKey(f"{S}.customers.id"), nullable=False),
        sa.Column("merged_id", sa.Uuid(), sa.ForeignKey(f"{S}.customers.id"), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        # What the merge changed, so that it can be undone exactly.
        sa.Column("undo", postgresql.JSONB(), nullable=False),
        sa.Column("merged_by", sa.String(200), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unmerged_by", sa.String(200)),
        sa.Column("unmerged_at", sa.DateTime(timezone=True)),
        sa.Column("unmerge_reason", sa.String(500)),
        sa.CheckConstraint("survivor_id <> merged_id", name="customer_merges_distinct"),
        schema=S,
    )
    # A customer is merged into at most one other at a time.
    op.execute(
        f"CREATE UNIQUE INDEX customer_merges_current ON {S}.customer_merges (merged_id)"
        " WHERE unmerged_at IS NULL"
    )
    op.create_index("customer_merges_survivor", "customer_merges", ["survivor_id"], schema=S)


def downgrade() -> None:
    op.drop_table("customer_merges", schema=S)
    op.drop_column("customers", "merged_into_id", schema=S)
