"""Ingested interactions (platform ids, authors, language, sentiment), authors, profile links,
trackers and their matches.

Revision ID: 0102
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0102"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"


def upgrade() -> None:
    add = op.add_column
    add("interactions", sa.Column("platform_id", sa.String(200)), schema=S)
    # Rows from before ingestion had no platform id: their own id stands in for it.
    op.execute(f"UPDATE {S}.interactions SET platform_id = id::text WHERE platform_id IS NULL")
    op.alter_column("interactions", "platform_id", nullable=False, schema=S)
    add("interactions", sa.Column("thread_id", sa.String(200)), schema=S)
    add("interactions", sa.Column("parent_id", sa.String(200)), schema=S)
    add("interactions", sa.Column("author_platform_user_id", sa.String(200)), schema=S)
    add("interactions", sa.Column("author_handle", sa.String(200)), schema=S)
    add("interactions", sa.Column("author_display_name", sa.String(300)), schema=S)
    add(
        "interactions",
        sa.Column("language", sa.String(16), nullable=False, server_default="und"),
        schema=S,
    )
    add("interactions", sa.Column("sentiment_score", sa.Float()), schema=S)
    add(
        "interactions",
        sa.Column("sentiment_label", sa.String(16), nullable=False, server_default="unanalyzed"),
        schema=S,
    )
    add("interactions", sa.Column("rating", sa.SmallInteger()), schema=S)
    add(
        "interactions",
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=S,
    )
    add("interactions", sa.Column("edited_at", sa.DateTime(timezone=True)), schema=S)
    add(
        "interactions",
        sa.Column("raw", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=S,
    )
    op.create_unique_constraint(
        "interactions_platform_item",
        "interactions",
        ["tenant_id", "channel", "platform_id"],
        schema=S,
    )
    op.drop_index("interactions_tenant_customer", "interactions", schema=S)
    op.execute(
        f"CREATE INDEX interactions_customer_newest ON {S}.interactions "
        "(tenant_id, customer_id, created_at DESC, id DESC) WHERE customer_id IS NOT NULL"
    )
    op.create_index(
        "interactions_thread",
        "interactions",
        ["tenant_id", "channel", "thread_id", "created_at", "id"],
        schema=S,
    )
    op.create_index(
        "interactions_author",
        "interactions",
        ["tenant_id", "channel", "author_platform_user_id"],
        schema=S,
    )

    op.create_table(
        "authors",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("platform_user_id", sa.String(200), primary_key=True),
        sa.Column("handle", sa.String(200)),
        sa.Column("display_name", sa.String(300)),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "profile_links",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("platform_user_id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid()),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "trackers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("term", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('keyword', 'hashtag', 'phrase')", name="trackers_kind"),
        schema=S,
    )
    op.execute(
        f"CREATE UNIQUE INDEX trackers_unique_term ON {S}.trackers (tenant_id, kind, lower(term))"
    )
    op.create_table(
        "interaction_trackers",
        sa.Column(
            "interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tracker_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.trackers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        schema=S,
    )
    op.create_index(
        "interaction_trackers_tracker",
        "interaction_trackers",
        ["tenant_id", "tracker_id"],
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("interaction_trackers", schema=S)
    op.drop_table("trackers", schema=S)
    op.drop_table("profile_links", schema=S)
    op.drop_table("authors", schema=S)
    op.drop_index("interactions_author", "interactions", schema=S)
    op.drop_index("interactions_thread", "interactions", schema=S)
    op.execute(f"DROP INDEX {S}.interactions_customer_newest")
    op.create_index(
        "interactions_tenant_customer", "interactions", ["tenant_id", "customer_id"], schema=S
    )
    op.drop_constraint("interactions_platform_item", "interactions", schema=S)
    for column in (
        "raw",
        "edited_at",
        "received_at",
        "rating",
        "sentiment_label",
        "sentiment_score",
        "language",
        "author_display_name",
        "author_handle",
        "author_platform_user_id",
        "parent_id",
        "thread_id",
        "platform_id",
    ):
        op.drop_column("interactions", column, schema=S)
