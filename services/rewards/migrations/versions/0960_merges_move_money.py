"""A merge moves money too: the merges rewards applied (so that a code of a merged-away
customer attributes to the survivor, and an unmerge arriving first is remembered) and the rows
each merge moved (purchases, coupons, a referral), for the unmerge to move back exactly those.

Revision ID: 0960
Revises: 0950
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0960"
down_revision: str | None = "0950"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "rewards"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {S}.customer_merges (
            merge_id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            survivor_id uuid NOT NULL,
            merged_id uuid NOT NULL,
            merged_at timestamptz,
            unmerged_at timestamptz
        )
        """
    )
    op.execute(
        f"CREATE INDEX customer_merges_open ON {S}.customer_merges (tenant_id, merged_id)"
        " WHERE unmerged_at IS NULL AND merged_at IS NOT NULL"
    )
    op.execute(
        f"""
        CREATE TABLE {S}.merge_moves (
            merge_id uuid NOT NULL REFERENCES {S}.customer_merges (merge_id),
            kind varchar(20) NOT NULL CHECK (kind IN ('purchase', 'coupon', 'referral')),
            row_id uuid NOT NULL,
            PRIMARY KEY (merge_id, kind, row_id)
        )
        """
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {S}.merge_moves")
    op.execute(f"DROP TABLE {S}.customer_merges")
