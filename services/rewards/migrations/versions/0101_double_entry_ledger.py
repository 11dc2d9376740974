"""The double-entry points ledger: accounts, journal entries, postings, lots.

Replaces the simple ``ledger_entries`` table (its rows become earn entries with lots) and keeps
a read-only view of the same name (customer postings) for readers of the old shape.

Revision ID: 0101
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0101"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENTRY_KINDS = "('earn', 'spend', 'expire', 'reversal', 'adjustment')"
ACCOUNT_KINDS = "('customer', 'liability', 'expense', 'redemption', 'breakage')"


def upgrade() -> None:
    # Accounts: the existing per-customer rows become customer accounts under the tenant's
    # liability account; tenant accounts have no customer.
    op.add_column(
        "accounts",
        sa.Column("kind", sa.String(), nullable=False, server_default="customer"),
        schema="rewards",
    )
    op.alter_column("accounts", "kind", server_default=None, schema="rewards")
    op.alter_column("accounts", "customer_id", nullable=True, schema="rewards")
    op.add_column(
        "accounts",
        sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("rewards.accounts.id"), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "accounts",
        sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0"),
        schema="rewards",
    )
    op.create_check_constraint(
        "accounts_kind", "accounts", f"kind IN {ACCOUNT_KINDS}", schema="rewards"
    )
    op.create_check_constraint(
        "accounts_customer_kind",
        "accounts",
        "(kind = 'customer') = (customer_id IS NOT NULL)",
        schema="rewards",
    )
    # The last line of defence of "never negative": the cached balance of a customer.
    op.create_check_constraint(
        "accounts_customer_not_negative",
        "accounts",
        "kind <> 'customer' OR balance >= 0",
        schema="rewards",
    )
    op.create_index(
        "accounts_tenant_kind",
        "accounts",
        ["tenant_id", "kind"],
        unique=True,
        schema="rewards",
        postgresql_where=sa.text("customer_id IS NULL"),
    )

    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column(
            "reverses_entry_id",
            sa.Uuid(),
            sa.ForeignKey("rewards.journal_entries.id"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="journal_entries_idempotency"),
        # Each entry is reversed at most once.
        sa.UniqueConstraint("reverses_entry_id", name="journal_entries_reversed_once"),
        sa.CheckConstraint(f"kind IN {ENTRY_KINDS}", name="journal_entries_kind"),
        sa.CheckConstraint(
            "(kind = 'reversal') = (reverses_entry_id IS NOT NULL)",
            name="journal_entries_reversal_target",
        ),
        schema="rewards",
    )
    op.create_index(
        "journal_entries_customer_history",
        "journal_entries",
        ["tenant_id", "customer_id", "created_at", "id"],
        schema="rewards",
    )
    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "entry_id", sa.Uuid(), sa.ForeignKey("rewards.journal_entries.id"), nullable=False
        ),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("rewards.accounts.id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name="postings_not_zero"),
        schema="rewards",
    )
    op.create_index("postings_entry", "postings", ["entry_id"], schema="rewards")
    op.create_index("postings_account", "postings", ["account_id"], schema="rewards")

    op.create_table(
        "lots",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("rewards.accounts.id"), nullable=False),
        sa.Column(
            "entry_id", sa.Uuid(), sa.ForeignKey("rewards.journal_entries.id"), nullable=False
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points > 0", name="lots_points_positive"),
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name="lots_remaining"),
        schema="rewards",
    )
    op.create_index(
        "lots_open_by_expiry",
        "lots",
        ["account_id", "expires_at", "created_at"],
        schema="rewards",
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "lots_due",
        "lots",
        ["expires_at"],
        schema="rewards",
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index("lots_entry", "lots", ["entry_id"], schema="rewards")
    op.create_table(
        "lot_consumptions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("lot_id", sa.Uuid(), sa.ForeignKey("rewards.lots.id"), nullable=False),
        sa.Column(
            "entry_id", sa.Uuid(), sa.ForeignKey("rewards.journal_entries.id"), nullable=False
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("points > 0", name="lot_consumptions_points_positive"),
        schema="rewards",
    )
    op.create_index("lot_consumptions_entry", "lot_consumptions", ["entry_id"], schema="rewards")
    op.create_index("lot_consumptions_lot", "lot_consumptions", ["lot_id"], schema="rewards")

    # Append-only: entries, postings and consumptions are never changed or removed.
    op.execute(
        """
        CREATE FUNCTION rewards.refuse_ledger_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END $$
        """
    )
    for table in ("journal_entries", "postings", "lot_consumptions"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON rewards.{table} "
            "FOR EACH ROW EXECUTE FUNCTION rewards.refuse_ledger_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON rewards.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION rewards.refuse_ledger_change()"
        )
    # Every entry balances: checked at commit, once all of its postings are in.
    op.execute(
        """
        CREATE FUNCTION rewards.check_entry_balanced() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE total bigint;
        BEGIN
            SELECT coalesce(sum(amount), 0) INTO total
              FROM rewards.postings WHERE entry_id = NEW.entry_id;
            IF total <> 0 THEN
                RAISE EXCEPTION 'journal entry % does not balance (sum %)', NEW.entry_id, total
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON rewards.postings "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "EXECUTE FUNCTION rewards.check_entry_balanced()"
    )

    _migrate_simple_ledger()


def _migrate_simple_ledger() -> None:
    """Old ``ledger_entries`` rows (credits) become earn entries with postings and lots."""
    op.execute(
        """
        INSERT INTO rewards.accounts (id, tenant_id, kind, customer_id, balance, created_at)
        SELECT gen_random_uuid(), t.tenant_id, k.kind, NULL, 0, now()
          FROM (SELECT DISTINCT tenant_id FROM rewards.accounts) t
         CROSS JOIN (VALUES ('liability'), ('expense'), ('redemption'), ('breakage')) k(kind)
        """
    )
    op.execute(
        """
        UPDATE rewards.accounts c SET parent_id = l.id
          FROM rewards.accounts l
         WHERE c.kind = 'customer' AND l.kind = 'liability' AND l.tenant_id = c.tenant_id
        """
    )
    op.execute(
        """
        INSERT INTO rewards.journal_entries
            (id, tenant_id, kind, customer_id, idempotency_key, fingerprint, reason, actor,
             created_at)
        SELECT e.id, e.tenant_id, 'earn', a.customer_id, e.idempotency_key, 'migrated',
               e.reason, 'system:migration', e.created_at
          FROM rewards.ledger_entries e JOIN rewards.accounts a ON a.id = e.account_id
         WHERE e.points > 0
        """
    )
    op.execute(
        """
        INSERT INTO rewards.postings (entry_id, account_id, amount)
        SELECT e.id, e.account_id, e.points FROM rewards.ledger_entries e WHERE e.points > 0
        UNION ALL
        SELECT e.id, x.id, -e.points
          FROM rewards.ledger_entries e
          JOIN rewards.accounts x ON x.tenant_id = e.tenant_id AND x.kind = 'expense'
         WHERE e.points > 0
        """
    )
    op.execute(
        """
        INSERT INTO rewards.lots
            (id, tenant_id, account_id, entry_id, points, remaining, expires_at, created_at)
        SELECT gen_random_uuid(), e.tenant_id, e.account_id, e.id, e.points, e.points,
               e.created_at + interval '365 days', e.created_at
          FROM rewards.ledger_entries e WHERE e.points > 0
        """
    )
    op.execute(
        """
        UPDATE rewards.accounts a SET balance = s.total
          FROM (SELECT account_id, sum(amount) AS total FROM rewards.postings
                GROUP BY account_id) s
         WHERE s.account_id = a.id AND a.kind = 'customer'
        """
    )
    op.drop_table("ledger_entries", schema="rewards")
    # The old shape, read-only: one row per posting on a customer account.
    op.execute(
        """
        CREATE VIEW rewards.ledger_entries AS
        SELECT e.id, e.tenant_id, p.account_id, p.amount::integer AS points, e.reason,
               e.idempotency_key, e.created_at
          FROM rewards.postings p
          JOIN rewards.journal_entries e ON e.id = p.entry_id
          JOIN rewards.accounts a ON a.id = p.account_id AND a.kind = 'customer'
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW rewards.ledger_entries")
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("rewards.accounts.id"), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="ledger_entries_idempotency"),
        schema="rewards",
    )
    op.create_index(
        "ix_rewards_ledger_entries_account_id", "ledger_entries", ["account_id"], schema="rewards"
    )
    # One summary row per customer keeps their balance; the history is lost.
    op.execute(
        """
        INSERT INTO rewards.ledger_entries
            (id, tenant_id, account_id, points, reason, idempotency_key, created_at)
        SELECT gen_random_uuid(), tenant_id, id, balance, 'ledger downgrade',
               'downgrade:' || id::text, now()
          FROM rewards.accounts WHERE kind = 'customer' AND balance <> 0
        """
    )
    op.drop_table("lot_consumptions", schema="rewards")
    op.drop_table("lots", schema="rewards")
    op.execute("DROP TABLE rewards.postings")
    op.execute("DROP TABLE rewards.journal_entries")
    op.execute("DROP FUNCTION rewards.check_entry_balanced()")
    op.execute("DROP FUNCTION rewards.refuse_ledger_change()")
    op.drop_column("accounts", "parent_id", schema="rewards")
    op.execute("DELETE FROM rewards.accounts WHERE kind <> 'customer'")
    op.drop_index("accounts_tenant_kind", table_name="accounts", schema="rewards")
    op.drop_constraint("accounts_customer_not_negative", "accounts", schema="rewards")
    op.drop_constraint("accounts_customer_kind", "accounts", schema="rewards")
    op.drop_constraint("accounts_kind", "accounts", schema="rewards")
    op.drop_column("accounts", "balance", schema="rewards")
    op.alter_column("accounts", "customer_id", nullable=False, schema="rewards")
    op.drop_column("accounts", "kind", schema="rewards")
