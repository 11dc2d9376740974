"""Connectors: connected accounts (tokens encrypted), pending authorizations, pull cursors,
publications.

Revision ID: 1700
Revises: 0960
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1700"
down_revision: str | Sequence[str] | None = "0960"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"


def _tz(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "connected_accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("platform_user_id", sa.String(200), nullable=False),
        sa.Column("handle", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("access_token", sa.Text()),
        sa.Column("refresh_token", sa.Text()),
        _tz("expires_at"),
        sa.Column("connected_by", sa.String(250), nullable=False),
        _tz("created_at", nullable=False),
        _tz("last_sync_at"),
        _tz("newest_item_at"),
        sa.Column("last_error", sa.Text()),
        _tz("last_error_at"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        _tz("next_sync_at"),
        _tz("rate_limited_until"),
        _tz("lease_until"),
        sa.UniqueConstraint("tenant_id", "channel", "platform_user_id", name="connected_account"),
        schema=S,
    )
    op.create_table(
        "connector_authorizations",
        sa.Column("state", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_verifier", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(250), nullable=False),
        _tz("expires_at", nullable=False),
        schema=S,
    )
    op.create_table(
        "connector_cursors",
        sa.Column(
            "account_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.connected_accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("high_water", sa.Text()),
        sa.Column("pending_high_water", sa.Text()),
        sa.Column("page_token", sa.Text()),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("items", sa.Integer(), nullable=False, server_default="0"),
        _tz("last_synced_at"),
        schema=S,
    )
    op.create_table(
        "connector_publications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False, index=True),
        sa.Column(
            "account_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.connected_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("in_reply_to", sa.String(200)),
        sa.Column("interaction_id", sa.Uuid()),
        sa.Column("case_id", sa.Uuid()),
        sa.Column("requested_by", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("platform_id", sa.String(200)),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _tz("next_attempt_at", nullable=False),
        _tz("lease_until"),
        _tz("created_at", nullable=False),
        _tz("published_at"),
        sa.UniqueConstraint("interaction_id", name="connector_publication_interaction"),
        schema=S,
    )
    # The publisher's queue: due publications in order.
    op.create_index(
        "connector_publications_due",
        "connector_publications",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status IN ('queued', 'sending')"),
    )


def downgrade() -> None:
    op.drop_table("connector_publications", schema=S)
    op.drop_table("connector_cursors", schema=S)
    op.drop_table("connector_authorizations", schema=S)
    op.drop_table("connected_accounts", schema=S)
