"""Privacy and merges: a projection of customers' consent, and which interactions a merge
moved (so that unmerging moves exactly those back).

Revision ID: 0103
Revises: 0102
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("purpose", sa.String(30), primary_key=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "merge_moves",
        sa.Column("merge_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("merge_moves", schema=S)
    op.drop_table("consents", schema=S)
