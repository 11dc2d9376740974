"""Erasure requests and each service's confirmation.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"


def upgrade() -> None:
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True)), schema=S)
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey(f"{S}.tenants.id"), nullable=False),
        sa.Column("customer_id", sa.Uuid(), sa.ForeignKey(f"{S}.customers.id"), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index(
        "erasure_requests_tenant", "erasure_requests", ["tenant_id", "requested_at"], schema=S
    )
    op.create_table(
        "erasure_confirmations",
        sa.Column(
            "request_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.erasure_requests.id"),
            primary_key=True,
        ),
        sa.Column("service", sa.String(50), primary_key=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("erasure_confirmations", schema=S)
    op.drop_table("erasure_requests", schema=S)
    op.drop_column("customers", "erased_at", schema=S)
