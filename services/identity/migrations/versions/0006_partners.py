"""Partners: broker subscriptions, webhook endpoints, kept events, deliveries and attempts,
and the idempotency keys of partner sign-ups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"


def _tenant() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey(f"{S}.tenants.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "partner_subscriptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey(f"{S}.api_clients.id"), nullable=False),
        sa.Column("broker_user", sa.String(200), nullable=False, unique=True),
        sa.Column("queue", sa.String(200), nullable=False, unique=True),
        sa.Column("event_types", ARRAY(sa.String()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index(
        "partner_subscriptions_tenant",
        "partner_subscriptions",
        ["tenant_id", "created_at"],
        schema=S,
    )
    op.create_index(
        "partner_subscriptions_client", "partner_subscriptions", ["client_id"], schema=S
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", ARRAY(sa.String()), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("previous_secret", sa.String(200)),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_reason", sa.String(500)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index(
        "webhook_endpoints_tenant", "webhook_endpoints", ["tenant_id", "created_at"], schema=S
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope", JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("webhook_events_tenant_time", "webhook_events", ["tenant_id", "time"], schema=S)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "endpoint_id", sa.Uuid(), sa.ForeignKey(f"{S}.webhook_endpoints.id"), nullable=False
        ),
        sa.Column(
            "event_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.webhook_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.String(2000)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", "generation", name="webhook_deliveries_once"
        ),
        schema=S,
    )
    # What the delivery loop claims: pending and due.
    op.create_index(
        "webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "webhook_deliveries_endpoint",
        "webhook_deliveries",
        ["endpoint_id", "created_at", "id"],
        schema=S,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "delivery_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.String(2000)),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        schema=S,
    )
    op.create_index(
        "webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "attempted_at"], schema=S
    )
    op.create_table(
        "partner_signups",
        _tenant(),
        # The calling client (token subject) and its Idempotency-Key.
        sa.Column("caller", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.Uuid(), sa.ForeignKey(f"{S}.customers.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "caller", "idempotency_key"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("partner_signups", schema=S)
    op.drop_table("webhook_attempts", schema=S)
    op.drop_table("webhook_deliveries", schema=S)
    op.drop_table("webhook_events", schema=S)
    op.drop_table("webhook_endpoints", schema=S)
    op.drop_table("partner_subscriptions", schema=S)
