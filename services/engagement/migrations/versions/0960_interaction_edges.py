"""The interaction graph as data: reply, mention and share edges, written with the interaction.

One row per (interaction, kind, target): ``target`` is the platform id of the item replied to
or shared, or the lower-cased ``@handle`` mentioned. Replies and shares are resolved to the
target item (and its author) when either end is stored; mentions are resolved against the
tenant's authors when the graph is read (handles change). Both ends cascade: erasing an item
erases the edges that name it. Existing interactions are backfilled here, once.

Revision ID: 0960
Revises: 0950
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0960"
down_revision: str | Sequence[str] | None = "0950"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"


def upgrade() -> None:
    op.create_table(
        "interaction_edges",
        sa.Column(
            "interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("source_author", sa.String(200), nullable=False),
        sa.Column(
            "target_interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
        ),
        sa.Column("target_author", sa.String(200)),
        sa.CheckConstraint("kind IN ('reply', 'mention', 'share')", name="interaction_edges_kind"),
        schema=S,
    )
    # The recomputation reads a tenant's edges; the cascade finds edges by their target.
    op.create_index("interaction_edges_tenant", "interaction_edges", ["tenant_id"], schema=S)
    op.execute(
        f"CREATE INDEX interaction_edges_target_item ON {S}.interaction_edges"
        " (target_interaction_id) WHERE target_interaction_id IS NOT NULL"
    )
    # Replies and shares whose target is not stored yet, found when it comes.
    op.execute(
        f"CREATE INDEX interaction_edges_pending ON {S}.interaction_edges"
        " (tenant_id, channel, target) WHERE target_interaction_id IS NULL AND kind <> 'mention'"
    )
    op.execute(
        rf"""
        INSERT INTO {S}.interaction_edges (interaction_id, kind, target, tenant_id, channel,
            source_author, target_interaction_id, target_author)
        SELECT e.id, e.kind, e.target, e.tenant_id, e.channel, e.author, p.id,
               p.author_platform_user_id
        FROM (
            SELECT id, 'reply' AS kind, parent_id AS target, tenant_id, channel,
                   author_platform_user_id AS author
            FROM {S}.interactions
            WHERE parent_id IS NOT NULL AND author_platform_user_id IS NOT NULL
            UNION
            SELECT i.id, 'mention', left(lower(m[1]), 200), i.tenant_id, i.channel,
                   i.author_platform_user_id
            FROM {S}.interactions i CROSS JOIN LATERAL regexp_matches(i.text, '@(\w+)', 'g') m
            WHERE i.author_platform_user_id IS NOT NULL AND i.text LIKE '%@%'
            UNION
            SELECT i.id, 'share', r ->> 'id', i.tenant_id, i.channel, i.author_platform_user_id
            FROM {S}.interactions i CROSS JOIN LATERAL jsonb_array_elements(
                CASE WHEN jsonb_typeof(i.raw -> 'post' -> 'referenced_tweets') = 'array'
                     THEN i.raw -> 'post' -> 'referenced_tweets' ELSE '[]'::jsonb END) r
            WHERE i.channel = 'x' AND i.author_platform_user_id IS NOT NULL
              AND r ->> 'type' IN ('quoted', 'retweeted') AND r ->> 'id' IS NOT NULL
        ) e
        LEFT JOIN {S}.interactions p ON e.kind <> 'mention' AND p.tenant_id = e.tenant_id
             AND p.channel = e.channel AND p.platform_id = e.target
        """
    )
    op.execute(f"ANALYZE {S}.interaction_edges")


def downgrade() -> None:
    op.drop_table("interaction_edges", schema=S)
