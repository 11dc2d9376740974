"""Rules (versioned), their payouts and refunds, stored trigger events, the segment
projection, tiers and customers' tiers.

Revision ID: 0201
Revises: 0102
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0201"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.Column[sa.DateTime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "rule_tenants",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        _now(),
        schema="rewards",
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("default_key", sa.String(), nullable=True),
        sa.Column("paid_points", sa.BigInteger(), nullable=False),
        sa.Column("paid_count", sa.BigInteger(), nullable=False),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "default_key", name="rules_default_key"),
        sa.CheckConstraint("paid_points >= 0 AND paid_count >= 0", name="rules_paid_not_negative"),
        schema="rewards",
    )
    # The payout path: a tenant's enabled rules of one trigger, highest priority first.
    op.create_index(
        "rules_trigger", "rules", ["tenant_id", "trigger", "priority"], schema="rewards"
    )
    op.create_table(
        "rule_versions",
        sa.Column("rule_id", sa.Uuid(), sa.ForeignKey("rewards.rules.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("definition", JSONB(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _now(),
        schema="rewards",
    )
    op.create_table(
        "rule_payouts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), sa.ForeignKey("rewards.rules.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("rewards.journal_entries.id")),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        _now(),
        sa.UniqueConstraint("tenant_id", "event_id", "rule_id", name="rule_payouts_once"),
        sa.ForeignKeyConstraint(
            ["rule_id", "version"],
            ["rewards.rule_versions.rule_id", "rewards.rule_versions.version"],
        ),
        schema="rewards",
    )
    # Caps count a customer's payouts of a rule by when the events happened.
    op.create_index(
        "rule_payouts_caps",
        "rule_payouts",
        ["rule_id", "customer_id", "occurred_at"],
        schema="rewards",
    )
    op.create_index(
        "rule_payouts_page", "rule_payouts", ["rule_id", "created_at", "id"], schema="rewards"
    )
    op.create_index(
        "rule_payouts_purchase",
        "rule_payouts",
        ["tenant_id", "purchase_id"],
        schema="rewards",
        postgresql_where=sa.text("purchase_id IS NOT NULL"),
    )
    op.create_table(
        "payout_refunds",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("refund_id", sa.Uuid(), nullable=False),
        sa.Column("payout_id", sa.Uuid(), sa.ForeignKey("rewards.rule_payouts.id"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("shortfall", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("rewards.journal_entries.id")),
        _now(),
        sa.UniqueConstraint("refund_id", "payout_id", name="payout_refunds_once"),
        schema="rewards",
    )
    op.create_table(
        "trigger_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("facts", JSONB(), nullable=False),
        _now(),
        schema="rewards",
    )
    # Dry runs read a tenant's events of one type in a time range; tiers and "first time"
    # read one customer's.
    op.create_index(
        "trigger_events_type",
        "trigger_events",
        ["tenant_id", "type", "occurred_at"],
        schema="rewards",
    )
    op.create_index(
        "trigger_events_customer",
        "trigger_events",
        ["tenant_id", "customer_id", "type", "occurred_at"],
        schema="rewards",
    )
    op.create_table(
        "customer_segments",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("segment", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema="rewards",
    )
    op.create_table(
        "tiers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("multiplier", sa.Numeric(4, 2), nullable=False),
        sa.Column("benefits", ARRAY(sa.String()), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("basis IN ('points', 'engagement')", name="tiers_basis"),
        sa.CheckConstraint("threshold >= 0 AND window_days > 0", name="tiers_positive"),
        schema="rewards",
    )
    # Among a tenant's tiers in use, names and levels are unique.
    op.create_index(
        "tiers_name",
        "tiers",
        ["tenant_id", sa.text("lower(name)")],
        unique=True,
        schema="rewards",
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_index(
        "tiers_level",
        "tiers",
        ["tenant_id", "level"],
        unique=True,
        schema="rewards",
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_table(
        "customer_tiers",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("tier_id", sa.Uuid(), sa.ForeignKey("rewards.tiers.id"), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        schema="rewards",
    )


def downgrade() -> None:
    for table in (
        "customer_tiers",
        "tiers",
        "customer_segments",
        "trigger_events",
        "payout_refunds",
        "rule_payouts",
        "rule_versions",
        "rules",
        "rule_tenants",
    ):
        op.drop_table(table, schema="rewards")
