"""Login throttling: failed staff logins counted per account and per client address, with the
time each is locked until (identity.access.throttle).

Revision ID: 0965
Revises: 0951
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0965"
down_revision: str | None = "0951"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE identity.login_throttle (
            key text PRIMARY KEY,
            failures integer NOT NULL CHECK (failures > 0),
            first_failed_at timestamptz NOT NULL,
            locked_until timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE identity.login_throttle")
