"""Offers, coupons (with grants and the per-customer counts that bound them), the audience
projection offers are aimed with, and the catalogue of rewards bought with points.

Revision ID: 0301
Revises: 0102
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0301"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_ARRAY = postgresql.ARRAY(sa.String())


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False, server_default=""),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("amount_off", sa.Numeric(12, 2), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("free_item", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flash", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("issued", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("per_customer_limit", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("target_segments", TEXT_ARRAY, nullable=False, server_default="{}"),
        sa.Column("target_tiers", TEXT_ARRAY, nullable=False, server_default="{}"),
        sa.Column("target_influencers", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("target_advocates", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('percentage', 'amount', 'free_item')", name="offers_kind"),
        sa.CheckConstraint("status IN ('draft', 'published', 'ended')", name="offers_status"),
        sa.CheckConstraint(
            "(kind = 'percentage') = (percent_off IS NOT NULL)"
            " AND (percent_off IS NULL OR percent_off BETWEEN 1 AND 100)",
            name="offers_percent",
        ),
        sa.CheckConstraint(
            "(kind = 'amount') = (amount_off IS NOT NULL AND currency IS NOT NULL)"
            " AND (amount_off IS NULL OR amount_off > 0)",
            name="offers_amount",
        ),
        sa.CheckConstraint(
            "(kind = 'free_item') = (free_item IS NOT NULL)", name="offers_free_item"
        ),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at", name="offers_window"
        ),
        # The last line of defence for stock: issuing is a conditional update of ``issued``.
        sa.CheckConstraint(
            "issued >= 0 AND (stock IS NULL OR issued <= stock)", name="offers_stock"
        ),
        sa.CheckConstraint("per_customer_limit >= 1", name="offers_per_customer_limit"),
        schema="rewards",
    )
    op.create_index(
        "offers_tenant_created", "offers", ["tenant_id", "created_at", "id"], schema="rewards"
    )
    op.create_index("offers_tenant_status", "offers", ["tenant_id", "status"], schema="rewards")

    op.create_table(
        "coupons",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), sa.ForeignKey("rewards.offers.id"), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_id", sa.String(200), nullable=True),
        sa.Column("redeemed_by", sa.String(), nullable=True),
        sa.UniqueConstraint("tenant_id", "code", name="coupons_tenant_code"),
        sa.UniqueConstraint("tenant_id", "grant_id", name="coupons_tenant_grant"),
        sa.CheckConstraint(
            "source IN ('claim', 'staff', 'grant', 'bulk', 'catalogue')", name="coupons_source"
        ),
        sa.CheckConstraint(
            "(redeemed_at IS NULL) = (order_id IS NULL)", name="coupons_redeemed_with_order"
        ),
        schema="rewards",
    )
    op.create_index(
        "coupons_customer",
        "coupons",
        ["tenant_id", "customer_id", "issued_at", "id"],
        schema="rewards",
    )
    op.create_index("coupons_offer", "coupons", ["offer_id"], schema="rewards")

    # How many coupons of an offer each customer holds: the per-customer limit is a
    # conditional upsert of this row, so concurrent claims of one customer queue on it.
    op.create_table(
        "offer_claims",
        sa.Column("offer_id", sa.Uuid(), sa.ForeignKey("rewards.offers.id"), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 1", name="offer_claims_count"),
        schema="rewards",
    )

    op.create_table(
        "coupon_grants",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("grant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("source_event_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("coupon_id", sa.Uuid(), sa.ForeignKey("rewards.coupons.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('issued', 'failed')", name="coupon_grants_status"),
        sa.CheckConstraint(
            "(status = 'issued') = (coupon_id IS NOT NULL)", name="coupon_grants_outcome"
        ),
        schema="rewards",
    )
    op.create_index(
        "coupon_grants_status",
        "coupon_grants",
        ["tenant_id", "status", "created_at", "grant_id"],
        schema="rewards",
    )

    # What offers are aimed at, projected from engagement's and loyalty's events (each part
    # with the time of the event that set it, so a late older event changes nothing).
    op.create_table(
        "audience_members",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("segment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tier", sa.String(100), nullable=True),
        sa.Column("tier_id", sa.String(100), nullable=True),
        sa.Column("tier_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("influencer", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("advocate", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("influence_at", sa.DateTime(timezone=True), nullable=True),
        schema="rewards",
    )

    op.create_table(
        "catalogue_items",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False, server_default=""),
        sa.Column("points_cost", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("redeemed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        # An item that is a coupon: redeeming it issues a coupon of this offer.
        sa.Column("offer_id", sa.Uuid(), sa.ForeignKey("rewards.offers.id"), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="true"),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points_cost > 0", name="catalogue_items_cost"),
        sa.CheckConstraint(
            "redeemed >= 0 AND (stock IS NULL OR redeemed <= stock)", name="catalogue_items_stock"
        ),
        sa.CheckConstraint(
            "per_customer_limit IS NULL OR per_customer_limit >= 1",
            name="catalogue_items_per_customer_limit",
        ),
        sa.CheckConstraint(
            "active_from IS NULL OR active_to IS NULL OR active_to > active_from",
            name="catalogue_items_window",
        ),
        schema="rewards",
    )
    op.create_index(
        "catalogue_items_tenant_created",
        "catalogue_items",
        ["tenant_id", "created_at", "id"],
        schema="rewards",
    )

    op.create_table(
        "catalogue_redemptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "item_id", sa.Uuid(), sa.ForeignKey("rewards.catalogue_items.id"), nullable=False
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column(
            "entry_id", sa.Uuid(), sa.ForeignKey("rewards.journal_entries.id"), nullable=True
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.Uuid(), sa.ForeignKey("rewards.coupons.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name="catalogue_redemptions_idempotency"
        ),
        schema="rewards",
    )
    op.create_index(
        "catalogue_redemptions_customer",
        "catalogue_redemptions",
        ["tenant_id", "customer_id"],
        schema="rewards",
    )

    op.create_table(
        "catalogue_claims",
        sa.Column(
            "item_id", sa.Uuid(), sa.ForeignKey("rewards.catalogue_items.id"), primary_key=True
        ),
        sa.Column("customer_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 1", name="catalogue_claims_count"),
        schema="rewards",
    )


def downgrade() -> None:
    for table in (
        "catalogue_claims",
        "catalogue_redemptions",
        "catalogue_items",
        "audience_members",
        "coupon_grants",
        "offer_claims",
        "coupons",
        "offers",
    ):
        op.drop_table(table, schema="rewards")
