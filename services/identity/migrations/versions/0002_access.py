"""Access: staff users, API clients, signing keys, audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("identity.tenants.id"), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "email", name="staff_users_tenant_email"),
        sa.CheckConstraint(
            "role IN ('admin', 'marketer', 'agent', 'analyst')", name="staff_users_role"
        ),
        schema="identity",
    )
    op.create_index(
        "ix_identity_staff_users_tenant_id", "staff_users", ["tenant_id"], schema="identity"
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("identity.tenants.id"), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('frontend', 'partner')", name="api_clients_kind"),
        schema="identity",
    )
    op.create_index(
        "ix_identity_api_clients_tenant_id", "api_clients", ["tenant_id"], schema="identity"
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(), primary_key=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_jwk", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        schema="identity",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("record_type", sa.String(), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema="identity",
    )
    op.create_index(
        "ix_identity_audit_log_tenant_at",
        "audit_log",
        ["tenant_id", "at", "id"],
        schema="identity",
    )
    # The audit log is append-only: nobody, not even identity's own role, edits history.
    op.execute(
        """
        CREATE FUNCTION identity.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only';
        END $$"""
    )
    op.execute(
        """
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON identity.audit_log
            FOR EACH ROW EXECUTE FUNCTION identity.audit_log_append_only()"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_append_only ON identity.audit_log")
    op.execute("DROP FUNCTION identity.audit_log_append_only()")
    op.drop_table("audit_log", schema="identity")
    op.drop_table("signing_keys", schema="identity")
    op.drop_table("api_clients", schema="identity")
    op.drop_table("staff_users", schema="identity")
