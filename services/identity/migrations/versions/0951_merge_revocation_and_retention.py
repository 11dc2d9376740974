"""One head again: partner revocation (0007) and the event retention indexes (0950) were built
side by side on 0006 and touch separate tables.

Revision ID: 0951
Revises: 0007, 0950
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0951"
down_revision: str | Sequence[str] | None = ("0007", "0950")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
