"""The customer across channels: profile fields, contact points, social profiles, links,
link suggestions and consent history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"
CHANNELS = "('x', 'facebook', 'instagram', 'youtube', 'reddit', 'tiktok', 'web', 'email')"


def _tenant() -> sa.Column[object]:
    return sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey(f"{S}.tenants.id"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=S) as t:
        t.add_column(sa.Column("given_name", sa.String(100)))
        t.add_column(sa.Column("family_name", sa.String(100)))
        t.add_column(sa.Column("birth_date", sa.Date()))
        t.add_column(sa.Column("gender", sa.String(40)))
        t.add_column(sa.Column("locale", sa.String(35)))
        t.add_column(sa.Column("country", sa.String(2)))
        t.add_column(
            sa.Column(
                "preferences", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'")
            )
        )
        t.add_column(
            sa.Column("lifecycle_status", sa.String(20), nullable=False, server_default="active")
        )
        t.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))
        t.create_check_constraint(
            "customers_lifecycle_status",
            "lifecycle_status IN ('prospect', 'active', 'inactive', 'churned')",
        )

    op.create_table(
        "contact_points",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column(
            "customer_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('email', 'phone')", name="contact_points_kind"),
        sa.UniqueConstraint("tenant_id", "kind", "value", name="contact_points_tenant_value"),
        schema=S,
    )
    op.create_index("contact_points_customer", "contact_points", ["customer_id"], schema=S)
    # The e-mail of the first slice becomes an (unverified) contact point.
    op.execute(
        f"INSERT INTO {S}.contact_points (id, tenant_id, customer_id, kind, value, verified,"
        " created_at) SELECT gen_random_uuid(), tenant_id, id, 'email', lower(email), false,"
        f" created_at FROM {S}.customers WHERE email IS NOT NULL"
    )
    op.execute(f"DROP INDEX {S}.customers_tenant_email")
    op.drop_column("customers", "email", schema=S)
    op.execute(
        f"CREATE INDEX customers_tenant_name ON {S}.customers"
        " (tenant_id, lower(name) text_pattern_ops)"
    )

    op.create_table(
        "social_profiles",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("platform_user_id", sa.String(200), nullable=False),
        sa.Column("handle", sa.String(200)),
        sa.Column("display_name", sa.String(200)),
        sa.Column("followers", sa.Integer()),
        sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column(
            "customer_id", sa.Uuid(), sa.ForeignKey(f"{S}.customers.id", ondelete="SET NULL")
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"channel IN {CHANNELS}", name="social_profiles_channel"),
        sa.UniqueConstraint(
            "tenant_id", "channel", "platform_user_id", name="social_profiles_platform_id"
        ),
        schema=S,
    )
    op.create_index("social_profiles_customer", "social_profiles", ["customer_id"], schema=S)
    op.execute(
        f"CREATE INDEX social_profiles_handle ON {S}.social_profiles (tenant_id, lower(handle))"
    )

    op.create_table(
        "profile_links",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column(
            "profile_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.social_profiles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "customer_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("evidence", sa.String(40), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("linked_by", sa.String(200), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unlinked_by", sa.String(200)),
        sa.Column("unlinked_at", sa.DateTime(timezone=True)),
        sa.Column("unlink_reason", sa.String(500)),
        sa.CheckConstraint(
            "evidence IN ('customer_confirmed', 'verified_contact_point', 'staff_decision')",
            name="profile_links_evidence",
        ),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name="profile_links_confidence"),
        schema=S,
    )
    # A profile belongs to at most one customer at a time.
    op.execute(
        f"CREATE UNIQUE INDEX profile_links_current ON {S}.profile_links (profile_id)"
        " WHERE unlinked_at IS NULL"
    )
    op.create_index("profile_links_customer", "profile_links", ["customer_id"], schema=S)

    op.create_table(
        "link_suggestions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column(
            "profile_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.social_profiles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "customer_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'rejected')", name="link_suggestions_status"
        ),
        sa.UniqueConstraint("profile_id", "customer_id", name="link_suggestions_pair"),
        schema=S,
    )
    op.create_index(
        "link_suggestions_open", "link_suggestions", ["tenant_id", "status", "created_at"], schema=S
    )

    op.create_table(
        "consent_records",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant(),
        sa.Column(
            "customer_id",
            sa.Uuid(),
            sa.ForeignKey(f"{S}.customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("purpose", sa.String(30), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("policy_version", sa.String(50), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('marketing', 'profiling', 'partner_sharing', 'content_reuse')",
            name="consent_records_purpose",
        ),
        schema=S,
    )
    op.create_index(
        "consent_records_customer",
        "consent_records",
        ["customer_id", "purpose", "recorded_at"],
        schema=S,
    )


def downgrade() -> None:
    for table in ("consent_records", "link_suggestions", "profile_links", "social_profiles"):
        op.drop_table(table, schema=S)
    op.execute(f"DROP INDEX {S}.customers_tenant_name")
    op.add_column("customers", sa.Column("email", sa.String(320)), schema=S)
    op.execute(
        f"UPDATE {S}.customers c SET email = p.value FROM {S}.contact_points p"
        " WHERE p.customer_id = c.id AND p.kind = 'email'"
    )
    op.drop_table("contact_points", schema=S)
    op.execute(
        f"CREATE UNIQUE INDEX customers_tenant_email ON {S}.customers "
        "(tenant_id, lower(email)) WHERE email IS NOT NULL"
    )
    with op.batch_alter_table("customers", schema=S) as t:
        t.drop_constraint("customers_lifecycle_status")
        for column in (
            "given_name",
            "family_name",
            "birth_date",
            "gender",
            "locale",
            "country",
            "preferences",
            "lifecycle_status",
            "updated_at",
        ):
            t.drop_column(column)
