"""Duplicate-customer suggestions: pairs of customers that look like one person, with the
evidence and a score, for staff to merge or dismiss (identity.duplicates).

Revision ID: 0971
Revises: 0970
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0971"
down_revision: str | None = "0970"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "identity"


def upgrade() -> None:
    # The mailbox an address reaches, as identity.customers.models.canonical_mailbox says:
    # no +tag, and no dots where the provider ignores them (an index finds equal mailboxes).
    op.execute(
        f"""
        CREATE FUNCTION {S}.email_mailbox(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN CASE
            WHEN lower(substring(value from '@([^@]*)$')) IN ('gmail.com', 'googlemail.com')
            THEN replace(split_part(lower(substring(value from '^(.*)@[^@]*$')), '+', 1), '.', '')
                 || '@gmail.com'
            ELSE split_part(lower(substring(value from '^(.*)@[^@]*$')), '+', 1)
                 || '@' || lower(substring(value from '@([^@]*)$'))
        END
        """
    )
    op.execute(
        f"CREATE INDEX contact_points_mailbox ON {S}.contact_points"
        f" (tenant_id, {S}.email_mailbox(value)) WHERE kind = 'email'"
    )
    op.execute(
        f"""
        CREATE TABLE {S}.duplicate_suggestions (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            customer_id uuid NOT NULL REFERENCES {S}.customers (id),
            candidate_id uuid NOT NULL REFERENCES {S}.customers (id),
            score double precision NOT NULL CHECK (score > 0 AND score <= 1),
            evidence jsonb NOT NULL,
            status varchar(20) NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'dismissed')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            dismissed_by varchar(200),
            dismissed_at timestamptz,
            dismiss_reason varchar(500),
            CHECK (customer_id < candidate_id)
        )
        """
    )
    op.execute(
        f"CREATE UNIQUE INDEX duplicate_suggestions_pair ON {S}.duplicate_suggestions"
        " (tenant_id, customer_id, candidate_id)"
    )
    op.execute(
        f"CREATE INDEX duplicate_suggestions_open ON {S}.duplicate_suggestions"
        " (tenant_id, score DESC, id) WHERE status = 'open'"
    )
    op.execute(
        f"CREATE INDEX duplicate_suggestions_candidate ON {S}.duplicate_suggestions (candidate_id)"
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {S}.duplicate_suggestions")
    op.execute(f"DROP INDEX {S}.contact_points_mailbox")
    op.execute(f"DROP FUNCTION {S}.email_mailbox(text)")
