"""Understanding: trend counters and spikes, participation segments and their settings,
influence scores and when they were computed, and authors' follower counts.

Revision ID: 0401
Revises: 0103
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0401"
down_revision: str | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"


def _at(name: str, *, nullable: bool = False) -> sa.Column[sa.DateTime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("authors", sa.Column("followers", sa.BigInteger()), schema=S)
    op.execute(
        f"CREATE INDEX authors_handle ON {S}.authors (tenant_id, channel, lower(handle))"
        " WHERE handle IS NOT NULL"
    )
    op.create_table(
        "trend_counts",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("dimension", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("granularity", sa.String(4), primary_key=True),
        sa.Column("bucket", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("dimension IN ('tracker', 'topic')", name="trend_counts_dimension"),
        sa.CheckConstraint("granularity IN ('hour', 'day')", name="trend_counts_granularity"),
        schema=S,
    )
    op.create_index(
        "trend_counts_period",
        "trend_counts",
        ["tenant_id", "dimension", "granularity", "bucket"],
        schema=S,
    )
    # The spike job reads one hour of every tenant's counters.
    op.execute(
        f"CREATE INDEX trend_counts_hour ON {S}.trend_counts (bucket) WHERE granularity = 'hour'"
    )
    op.create_table(
        "trend_spikes",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("dimension", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        _at("detected_at"),
        schema=S,
    )
    op.create_table(
        "segment_settings",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("creator_min_originals", sa.Integer(), nullable=False),
        sa.Column("occasional_min_contributions", sa.Integer(), nullable=False),
        _at("updated_at"),
        schema=S,
    )
    op.create_table(
        "customer_segments",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("segment", sa.String(16), nullable=False),
        _at("since"),
        _at("computed_at"),
        sa.CheckConstraint(
            "segment IN ('creator', 'occasional', 'observer', 'inactive')",
            name="customer_segments_segment",
        ),
        schema=S,
    )
    op.create_index(
        "customer_segments_by_segment", "customer_segments", ["tenant_id", "segment"], schema=S
    )
    op.create_table(
        "influence_scores",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("engagement_received", sa.BigInteger(), nullable=False),
        sa.Column("amplification", sa.BigInteger(), nullable=False),
        sa.Column("page_rank", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("mean_sentiment", sa.Float()),
        sa.Column("influencer", sa.Boolean(), nullable=False),
        sa.Column("advocate", sa.Boolean(), nullable=False),
        sa.Column("detractor", sa.Boolean(), nullable=False),
        _at("computed_at"),
        schema=S,
    )
    for flag in ("advocate", "detractor"):
        op.execute(
            f"CREATE INDEX influence_{flag}s ON {S}.influence_scores"
            f" (tenant_id, score DESC, customer_id DESC) WHERE {flag}"
        )
    op.create_table(
        "influence_runs",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        _at("computed_at"),
        sa.Column("profiles", sa.Integer(), nullable=False),
        sa.Column("edges", sa.Integer(), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "influence_runs",
        "influence_scores",
        "customer_segments",
        "segment_settings",
        "trend_spikes",
        "trend_counts",
    ):
        op.drop_table(table, schema=S)
    op.execute(f"DROP INDEX {S}.authors_handle")
    op.drop_column("authors", "followers", schema=S)
