"""Customer lists a console can use: accent- and case-insensitive search (unaccent + trigram
indexes), tags, and the activity projection (value, balance, segment, tier, last interaction)
that identity keeps from rewards' and engagement's events to sort and filter on.

The extensions are created by provisioning (as the admin, in schema identity); ``IF NOT
EXISTS`` here lets a deployment whose identity role may create them do it here instead.

Revision ID: 0970
Revises: 0965
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0970"
down_revision: str | None = "0965"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"


def upgrade() -> None:
    op.execute(f"CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA {S}")
    op.execute(f"CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA {S}")
    # unaccent() is only STABLE (its dictionary could change); naming the dictionary makes a
    # wrapper that may be declared IMMUTABLE, which an index expression needs.
    op.execute(
        f"""
        CREATE FUNCTION {S}.search_text(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN lower({S}.unaccent('{S}.unaccent'::regdictionary, value))
        """
    )
    op.execute(
        f"CREATE INDEX customers_name_trgm ON {S}.customers"
        f" USING gin ({S}.search_text(name) {S}.gin_trgm_ops)"
    )
    op.execute(
        f"CREATE INDEX customers_tenant_sort_name ON {S}.customers"
        f" (tenant_id, {S}.search_text(name), id)"
    )
    op.execute(
        f"CREATE INDEX contact_points_value_trgm ON {S}.contact_points"
        f" USING gin (value {S}.gin_trgm_ops)"
    )
    op.execute(
        f"CREATE INDEX social_profiles_handle_trgm ON {S}.social_profiles"
        f" USING gin (lower(handle) {S}.gin_trgm_ops)"
    )
    op.execute(
        f"""
        CREATE TABLE {S}.customer_tags (
            tenant_id uuid NOT NULL,
            customer_id uuid NOT NULL REFERENCES {S}.customers (id),
            tag varchar(60) NOT NULL,
            tagged_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (customer_id, tag)
        )
        """
    )
    op.execute(f"CREATE INDEX customer_tags_tag ON {S}.customer_tags (tenant_id, tag)")
    # One row per customer other services told identity about; each figure with the time of
    # the event that set it, so that a late, older event changes nothing.
    op.execute(
        f"""
        CREATE TABLE {S}.customer_activity (
            tenant_id uuid NOT NULL,
            customer_id uuid NOT NULL,
            value_cents bigint NOT NULL DEFAULT 0,
            value_at timestamptz,
            balance integer NOT NULL DEFAULT 0,
            balance_at timestamptz,
            segment varchar(40),
            segment_at timestamptz,
            tier varchar(100),
            tier_at timestamptz,
            last_interaction_at timestamptz,
            PRIMARY KEY (tenant_id, customer_id)
        )
        """
    )
    for column in ("value_cents", "balance", "last_interaction_at"):
        op.execute(
            f"CREATE INDEX customer_activity_{column} ON {S}.customer_activity"
            f" (tenant_id, {column}, customer_id)"
        )
    op.execute(
        f"CREATE INDEX customer_activity_segment ON {S}.customer_activity (tenant_id, segment)"
    )
    op.execute(f"CREATE INDEX customer_activity_tier ON {S}.customer_activity (tenant_id, tier)")


def downgrade() -> None:
    op.execute(f"DROP TABLE {S}.customer_activity")
    op.execute(f"DROP TABLE {S}.customer_tags")
    for index in (
        "social_profiles_handle_trgm",
        "contact_points_value_trgm",
        "customers_tenant_sort_name",
        "customers_name_trgm",
    ):
        op.execute(f"DROP INDEX {S}.{index}")
    op.execute(f"DROP FUNCTION {S}.search_text(text)")
