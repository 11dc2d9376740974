"""Drop the read-only ``ledger_entries`` view kept from before the double-entry ledger: every
reader now reads journal entries and postings.

Revision ID: 0502
Revises: 0501
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0502"
down_revision: str | None = "0501"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP VIEW rewards.ledger_entries")


def downgrade() -> None:
    op.execute(
        """
        CREATE VIEW rewards.ledger_entries AS
        SELECT e.id, e.tenant_id, p.account_id, p.amount::integer AS points, e.reason,
               e.idempotency_key, e.created_at
          FROM rewards.postings p
          JOIN rewards.journal_entries e ON e.id = p.entry_id
          JOIN rewards.accounts a ON a.id = p.account_id AND a.kind = 'customer'
        """
    )
