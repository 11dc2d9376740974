"""One head again: care (0201), community (0301) and listening analytics (0401) were built side
by side on 0103 and touch separate tables.

Revision ID: 0900
Revises: 0201, 0301, 0401
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0900"
down_revision: str | Sequence[str] | None = ("0201", "0301", "0401")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
