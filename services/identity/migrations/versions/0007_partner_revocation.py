"""Partner revocation cascades: a webhook endpoint may belong to a partner API client, a
revoked subscription says why, and an API client says when it was revoked.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints",
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey(f"{S}.api_clients.id")),
        schema=S,
    )
    op.create_index(
        "webhook_endpoints_client",
        "webhook_endpoints",
        ["client_id"],
        schema=S,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.add_column("partner_subscriptions", sa.Column("revoked_reason", sa.String(500)), schema=S)
    op.add_column("api_clients", sa.Column("revoked_at", sa.DateTime(timezone=True)), schema=S)


def downgrade() -> None:
    op.drop_column("api_clients", "revoked_at", schema=S)
    op.drop_column("partner_subscriptions", "revoked_reason", schema=S)
    op.drop_index("webhook_endpoints_client", table_name="webhook_endpoints", schema=S)
    op.drop_column("webhook_endpoints", "client_id", schema=S)
