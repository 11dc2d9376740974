"""Transfer entries: a merge moves the merged customer's lots to the survivor (and an unmerge
moves back what is left of them).

Revision ID: 0501
Revises: 0102
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0501"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "('earn', 'spend', 'expire', 'reversal', 'adjustment')"
AFTER = "('earn', 'spend', 'expire', 'reversal', 'adjustment', 'transfer')"


def upgrade() -> None:
    op.drop_constraint("journal_entries_kind", "journal_entries", schema="rewards")
    op.create_check_constraint(
        "journal_entries_kind", "journal_entries", f"kind IN {AFTER}", schema="rewards"
    )


def downgrade() -> None:
    op.drop_constraint("journal_entries_kind", "journal_entries", schema="rewards")
    op.create_check_constraint(
        "journal_entries_kind", "journal_entries", f"kind IN {BEFORE}", schema="rewards"
    )
