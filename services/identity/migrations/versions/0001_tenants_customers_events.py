"""Tenants, customers, and the outbox/inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_shared.events.tables import create_event_tables, drop_event_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="identity",
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("identity.tenants.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="identity",
    )
    op.create_index(
        "customers_tenant_page", "customers", ["tenant_id", "created_at", "id"], schema="identity"
    )
    op.execute(
        "CREATE UNIQUE INDEX customers_tenant_email ON identity.customers "
        "(tenant_id, lower(email)) WHERE email IS NOT NULL"
    )
    create_event_tables(op, "identity")


def downgrade() -> None:
    drop_event_tables(op, "identity")
    op.drop_table("customers", schema="identity")
    op.drop_table("tenants", schema="identity")
