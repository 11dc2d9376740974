"""Purchases and refunds partners report, referrals (codes, programs, fraud evidence,
milestones) and customer value.

Revision ID: 0401
Revises: 0102
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0401"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "('attributed', 'held', 'rewarded', 'unqualified', 'rejected')"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "purchases",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("refunded_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("tenant_id", "order_id", name="purchases_tenant_order"),
        sa.CheckConstraint("amount_cents > 0", name="purchases_amount_positive"),
        sa.CheckConstraint(
            "refunded_cents >= 0 AND refunded_cents <= amount_cents",
            name="purchases_refunds_within_amount",
        ),
        sa.CheckConstraint("kind IN ('purchase', 'subscription')", name="purchases_kind"),
        schema="rewards",
    )
    op.create_index(
        "purchases_customer",
        "purchases",
        ["tenant_id", "customer_id", "occurred_at", "id"],
        schema="rewards",
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), sa.ForeignKey("rewards.purchases.id"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("amount_cents > 0", name="refunds_amount_positive"),
        schema="rewards",
    )
    op.create_index("refunds_purchase", "refunds", ["purchase_id"], schema="rewards")
    op.create_table(
        "purchase_requests",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("operation", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema="rewards",
    )
    op.create_table(
        "tenant_currencies",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema="rewards",
    )

    op.create_table(
        "referral_programs",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("settings", JSONB(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema="rewards",
    )
    op.create_table(
        "referral_codes",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("tenant_id", "code", name="referral_codes_tenant_code"),
        schema="rewards",
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=False),
        sa.Column("referred_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("hold_reasons", JSONB(), nullable=False, server_default="[]"),
        sa.Column("attributed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("qualifying_purchase_id", sa.Uuid(), nullable=True),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("referrer_entry_id", sa.Uuid(), nullable=True),
        sa.Column("referred_entry_id", sa.Uuid(), nullable=True),
        sa.Column("reviewed_by", sa.String(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("tenant_id", "referred_id", name="referrals_tenant_referred"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="referrals_status"),
        schema="rewards",
    )
    op.create_index(
        "referrals_referrer",
        "referrals",
        ["tenant_id", "referrer_id", "attributed_at", "id"],
        schema="rewards",
    )
    op.create_index(
        "referrals_held",
        "referrals",
        ["tenant_id", "attributed_at", "id"],
        schema="rewards",
        postgresql_where=sa.text("status = 'held'"),
    )
    op.create_index(
        "referrals_qualifying_purchase",
        "referrals",
        ["qualifying_purchase_id"],
        schema="rewards",
        postgresql_where=sa.text("qualifying_purchase_id IS NOT NULL"),
    )
    op.create_table(
        "contact_fingerprints",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("fingerprint", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema="rewards",
    )
    op.create_index(
        "contact_fingerprints_customer",
        "contact_fingerprints",
        ["tenant_id", "customer_id"],
        schema="rewards",
    )
    op.create_table(
        "referral_milestone_grants",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("referrer_id", sa.Uuid(), primary_key=True),
        sa.Column("milestone_id", sa.String(60), primary_key=True),
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema="rewards",
    )

    op.create_table(
        "customer_values",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("own_revenue_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("referral_revenue_cents", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema="rewards",
    )


def downgrade() -> None:
    for table in (
        "customer_values",
        "referral_milestone_grants",
        "contact_fingerprints",
        "referrals",
        "referral_codes",
        "referral_programs",
        "tenant_currencies",
        "purchase_requests",
        "refunds",
        "purchases",
    ):
        op.drop_table(table, schema="rewards")
