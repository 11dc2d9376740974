"""Social customer care: the brand's own accounts, cases with their interactions, replies to
publish, SLA breaches, and a projection of customer value; interactions learn who is the brand.

Revision ID: 0201
Revises: 0103
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0201"
down_revision: str | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "engagement"
ACTIVE = "status IN ('open', 'assigned', 'answered')"


def upgrade() -> None:
    op.add_column(
        "interactions",
        sa.Column("by_brand", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.create_table(
        "brand_accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("platform_user_id", sa.String(200), nullable=False),
        sa.Column("handle", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "tenant_id", "channel", "platform_user_id", name="brand_accounts_account"
        ),
        schema=S,
    )
    op.create_table(
        "customer_values",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("value_cents", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("thread_key", sa.String(200), nullable=False),
        sa.Column("author_platform_user_id", sa.String(200)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("priority_rank", sa.SmallInteger(), nullable=False),
        sa.Column("priority_score", sa.Float(), nullable=False),
        sa.Column("sentiment_score", sa.Float()),
        sa.Column("author_followers", sa.Integer()),
        sa.Column("customer_value_cents", sa.BigInteger()),
        sa.Column("assignee_id", sa.String(200)),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        sa.Column("first_response_at", sa.DateTime(timezone=True)),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "interaction_id", name="cases_opening_interaction"),
        sa.CheckConstraint(
            "status IN ('open', 'assigned', 'answered', 'resolved', 'closed')",
            name="cases_status",
        ),
        schema=S,
    )
    # One active case per customer and thread: a follow-up attaches to it.
    op.execute(
        f"CREATE UNIQUE INDEX cases_active_per_thread ON {S}.cases "
        f"(tenant_id, channel, thread_key, author_platform_user_id) WHERE {ACTIVE}"
    )
    # The queue: priority, then age.
    op.create_index(
        "cases_queue", "cases", ["tenant_id", "priority_rank", "opened_at", "id"], schema=S
    )
    op.execute(
        f"CREATE INDEX cases_first_response_due ON {S}.cases (first_response_due_at) "
        f"WHERE first_response_at IS NULL AND {ACTIVE}"
    )
    op.execute(
        f"CREATE INDEX cases_resolution_due ON {S}.cases (resolution_due_at) "
        f"WHERE resolved_at IS NULL AND {ACTIVE}"
    )
    op.create_table(
        "case_interactions",
        sa.Column(
            "case_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.cases.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        schema=S,
    )
    op.create_index(
        "case_interactions_interaction", "case_interactions", ["interaction_id"], schema=S
    )
    op.create_table(
        "case_replies",
        sa.Column(
            "interaction_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.interactions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "case_id", sa.Uuid(), sa.ForeignKey(f"{S}.cases.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("replied_by", sa.String(250), nullable=False),
        sa.Column("publish_status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "publish_status IN ('to_publish', 'published', 'failed')",
            name="case_replies_publish_status",
        ),
        schema=S,
    )
    op.create_table(
        "case_breaches",
        sa.Column(
            "case_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.cases.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("target", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "target IN ('first_response', 'resolution')", name="case_breaches_target"
        ),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("case_breaches", schema=S)
    op.drop_table("case_replies", schema=S)
    op.drop_table("case_interactions", schema=S)
    op.drop_table("cases", schema=S)
    op.drop_table("customer_values", schema=S)
    op.drop_table("brand_accounts", schema=S)
    op.drop_column("interactions", "by_brand", schema=S)
