"""One head again: rules and tiers (0201), offers and coupons (0301), purchases and referrals
(0401) and merge transfers (0502) were built side by side on 0102 and touch separate tables.

Revision ID: 0900
Revises: 0201, 0301, 0401, 0502
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0900"
down_revision: str | Sequence[str] | None = ("0201", "0301", "0401", "0502")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
