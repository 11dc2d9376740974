"""Token revocation: per principal, the moment before which its tokens are refused
(identity.access.service.revoke_tokens), listed for every service at ``GET /auth/revocations``.

Revision ID: 0975
Revises: 0971
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0975"
down_revision: str | None = "0971"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE identity.token_revocations (
            tenant_id uuid NOT NULL REFERENCES identity.tenants (id),
            kind text NOT NULL CHECK (kind IN ('staff', 'client', 'customer')),
            subject text NOT NULL,
            not_before timestamptz NOT NULL,
            reason text NOT NULL,
            PRIMARY KEY (tenant_id, kind, subject)
        )
        """
    )
    op.execute("CREATE INDEX token_revocations_recent ON identity.token_revocations (not_before)")


def downgrade() -> None:
    op.execute("DROP TABLE identity.token_revocations")
