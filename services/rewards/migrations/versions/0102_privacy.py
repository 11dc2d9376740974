"""Privacy: erasure may blank a journal entry's free-text reason (amounts never change), and
rewards keeps a projection of customers' consent.

Revision ID: 0102
Revises: 0101
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One exception to append-only: an entry's reason (free text staff may have typed a name
    # into) may become '(erased)'; nothing else of an entry may change.
    op.execute(
        """
        CREATE FUNCTION rewards.refuse_entry_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.reason = '(erased)'
               AND (to_jsonb(NEW) - 'reason') = (to_jsonb(OLD) - 'reason') THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
        END $$
        """
    )
    op.execute("DROP TRIGGER journal_entries_append_only ON rewards.journal_entries")
    op.execute(
        "CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON "
        "rewards.journal_entries FOR EACH ROW EXECUTE FUNCTION rewards.refuse_entry_change()"
    )
    op.create_table(
        "consents",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("purpose", sa.String(30), primary_key=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema="rewards",
    )


def downgrade() -> None:
    op.drop_table("consents", schema="rewards")
    op.execute("DROP TRIGGER journal_entries_append_only ON rewards.journal_entries")
    op.execute(
        "CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON "
        "rewards.journal_entries FOR EACH ROW EXECUTE FUNCTION rewards.refuse_ledger_change()"
    )
    op.execute("DROP FUNCTION rewards.refuse_entry_change()")
