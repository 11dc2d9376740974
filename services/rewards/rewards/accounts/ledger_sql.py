"""The ledger's hand-written SQL: the statements that write and read entries.

Written as ``text`` rather than ORM constructs because the ledger's cost was Python, not
PostgreSQL (bench/RESULTS.md, "Ledger"); each statement is made once (``functools.cache``).
"""

from __future__ import annotations

import functools

from sqlalchemy import TextClause, text

from crm_shared.events.outbox import outbox_insert


@functools.cache
def EARN_MANY(schema: str) -> TextClause:  # noqa: N802 - a statement, named as the others
    """Earn credits of one tenant in one statement (``credits.earn_many``): with a guard that
    no key of the batch was used, the entries, two postings each, every account's new
    balance, a lot each and the ``points.credited`` events in ``schema``'s outbox (one
    multi-row insert: the outbox trigger notifies once). Returns whether the guard passed, how
    many entries were written, whether the tenant's counterpart account exists, and the
    credited accounts' new balances."""
    return text(
        f"""
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:entries AS uuid[]), CAST(:accounts AS uuid[]), CAST(:customers AS uuid[]),
            CAST(:keys AS text[]), CAST(:prints AS text[]), CAST(:reasons AS text[]),
            CAST(:points AS bigint[]), CAST(:lots AS uuid[]))
            WITH ORDINALITY AS i (entry, account, customer, key, print, reason, points, lot, n)),
    counterpart AS (
        SELECT id FROM rewards.accounts
         WHERE tenant_id = CAST(:tenant AS uuid) AND kind = CAST(:counterpart AS text)
           AND customer_id IS NULL),
    guard AS (
        SELECT NOT EXISTS (SELECT FROM rewards.journal_entries
                            WHERE tenant_id = CAST(:tenant AS uuid)
                              AND idempotency_key = ANY(CAST(:keys AS text[])))
               AND EXISTS (SELECT FROM counterpart) AS ok),
    entry AS (
        INSERT INTO rewards.journal_entries (id, tenant_id, kind, customer_id, idempotency_key,
            fingerprint, reason, actor, reverses_entry_id, created_at)
        SELECT input.entry, CAST(:tenant AS uuid), CAST(:kind AS text), input.customer,
               input.key, input.print, input.reason, CAST(:actor AS text), NULL,
               CAST(:now AS timestamptz)
          FROM input, guard WHERE guard.ok ORDER BY input.n
        ON CONFLICT ON CONSTRAINT journal_entries_idempotency DO NOTHING
        RETURNING id),
    written AS (SELECT input.* FROM input JOIN entry ON entry.id = input.entry),
    postings AS (
        INSERT INTO rewards.postings (entry_id, account_id, amount)
        SELECT written.entry, written.account, written.points FROM written
        UNION ALL
        SELECT written.entry, counterpart.id, -written.points FROM written, counterpart),
    balance AS (
        UPDATE rewards.accounts a SET balance = a.balance + w.total
          FROM (SELECT account, sum(points) AS total FROM written GROUP BY account) AS w
         WHERE a.id = w.account
        RETURNING a.id, a.balance),
    lot AS (
        INSERT INTO rewards.lots (id, tenant_id, account_id, entry_id, points, remaining,
            expires_at, created_at)
        SELECT written.lot, CAST(:tenant AS uuid), written.account, written.entry,
               written.points, written.points, CAST(:expires_at AS timestamptz),
               CAST(:now AS timestamptz)
          FROM written),
    event AS (
        INSERT INTO {schema}.outbox (id, type, routing_key, envelope)
        SELECT e.id, e.type, e.routing_key, CAST(e.envelope AS jsonb)
          FROM unnest(CAST(:event_ids AS uuid[]), CAST(:event_types AS text[]),
                      CAST(:routing_keys AS text[]), CAST(:envelopes AS text[]))
               WITH ORDINALITY AS e (id, type, routing_key, envelope, n)
         WHERE (SELECT ok FROM guard)
         ORDER BY e.n)
    SELECT (SELECT ok FROM guard), (SELECT count(*) FROM entry),
           EXISTS (SELECT FROM counterpart),
           ARRAY(SELECT id FROM balance), ARRAY(SELECT balance FROM balance)
    """
    )


@functools.cache
def CREDIT_ONE(schema: str) -> TextClause:  # noqa: N802 - a statement, named as the others
    """A credit in one statement, its lock included (``service._credit``'s fast path): when
    the customer has an account, the tenant its counterpart and the key is unused, the entry,
    its postings, the balance (the ``UPDATE`` takes the row lock and waits for a movement in
    flight), the lot and the event in ``schema``'s outbox with the balance after the credit
    set in it. Returns whether the guard passed, the entry's id (None when the key was taken
    meanwhile: the caller takes the locking path, which replays) and the new balance."""
    return text(
        f"""
    WITH account AS (
        SELECT id FROM rewards.accounts
         WHERE tenant_id = CAST(:tenant AS uuid) AND customer_id = CAST(:customer AS uuid)
           AND kind = 'customer'),
    counterpart AS (
        SELECT id FROM rewards.accounts
         WHERE tenant_id = CAST(:tenant AS uuid) AND kind = CAST(:counterpart AS text)
           AND customer_id IS NULL),
    guard AS (
        SELECT EXISTS (SELECT FROM account) AND EXISTS (SELECT FROM counterpart)
               AND NOT EXISTS (SELECT FROM rewards.journal_entries
                                WHERE tenant_id = CAST(:tenant AS uuid)
                                  AND idempotency_key = CAST(:key AS text)) AS ok),
    entry AS (
        INSERT INTO rewards.journal_entries (id, tenant_id, kind, customer_id, idempotency_key,
            fingerprint, reason, actor, reverses_entry_id, created_at)
        SELECT CAST(:entry AS uuid), CAST(:tenant AS uuid), CAST(:kind AS text),
               CAST(:customer AS uuid), CAST(:key AS text), CAST(:fingerprint AS text),
               CAST(:reason AS text), CAST(:actor AS text), NULL, CAST(:now AS timestamptz)
          FROM guard WHERE guard.ok
        ON CONFLICT ON CONSTRAINT journal_entries_idempotency DO NOTHING
        RETURNING id),
    postings AS (
        INSERT INTO rewards.postings (entry_id, account_id, amount)
        SELECT entry.id, account.id, CAST(:points AS bigint) FROM entry, account
        UNION ALL
        SELECT entry.id, counterpart.id, -CAST(:points AS bigint) FROM entry, counterpart),
    balance AS (
        UPDATE rewards.accounts SET balance = balance + CAST(:points AS bigint)
         WHERE id = (SELECT id FROM account) AND EXISTS (SELECT FROM entry)
        RETURNING id, balance),
    lot AS (
        INSERT INTO rewards.lots (id, tenant_id, account_id, entry_id, points, remaining,
            expires_at, created_at)
        SELECT CAST(:lot AS uuid), CAST(:tenant AS uuid), account.id, entry.id,
               CAST(:points AS bigint), CAST(:points AS bigint),
               CAST(:expires_at AS timestamptz), CAST(:now AS timestamptz)
          FROM entry, account),
    event AS (
        INSERT INTO {schema}.outbox (id, type, routing_key, envelope)
        SELECT CAST(:event_id AS uuid), CAST(:event_type AS text),
               CAST(:routing_key AS text),
               jsonb_set(CAST(:envelope AS jsonb), '{{data,balance_after}}',
                         to_jsonb(balance.balance))
          FROM balance)
    SELECT (SELECT ok FROM guard), (SELECT id FROM entry), (SELECT id FROM balance),
           (SELECT balance FROM balance)
    """
    )


LOCK_CUSTOMER_ACCOUNT = text(
    "SELECT id FROM rewards.accounts WHERE tenant_id = CAST(:tenant AS uuid) "
    "AND customer_id = CAST(:customer AS uuid) AND kind = 'customer' FOR UPDATE"
)

LOCK_CUSTOMER_ACCOUNTS = text(
    "SELECT customer_id, id, balance FROM rewards.accounts WHERE tenant_id = CAST(:tenant AS uuid) "
    "AND customer_id = ANY(CAST(:customers AS uuid[])) AND kind = 'customer' "
    "ORDER BY customer_id FOR UPDATE"
)

LOCK_FOR_MOVEMENT = text(
    """
    SELECT a.id, a.balance,
           (SELECT x.id FROM rewards.accounts x
             WHERE x.tenant_id = a.tenant_id AND x.kind = CAST(:counterpart AS text)
               AND x.customer_id IS NULL) AS counterpart,
           EXISTS (SELECT FROM rewards.journal_entries e
                    WHERE e.tenant_id = a.tenant_id
                      AND e.idempotency_key = CAST(:key AS text)) AS key_used,
           EXISTS (SELECT FROM rewards.lots l
                    WHERE l.account_id = a.id AND l.remaining > 0
                      AND l.expires_at <= CAST(:now AS timestamptz)) AS due
      FROM rewards.accounts a
     WHERE a.tenant_id = CAST(:tenant AS uuid) AND a.customer_id = CAST(:customer AS uuid)
       AND a.kind = 'customer'
       FOR UPDATE
    """
)


@functools.cache
def entry_statement(
    postings: int, *, lot: bool, take: bool, fresh_key: bool, outbox: str | None
) -> TextClause:
    """The statement that writes one entry and everything that goes with it (see ``_insert``).

    With ``fresh_key`` it first checks, in its own snapshot, that the key is unused and (with
    ``take``) that no lot of the account is due; with ``lot`` it adds the credit's lot; with
    ``take`` it takes the debit's points from the open lots, oldest expiring first; with
    ``outbox`` (a schema) it adds the entry's event to that outbox. Every part but the check
    writes only if the entry was written.
    """
    due = (
        " AND NOT EXISTS (SELECT FROM rewards.lots WHERE account_id = CAST(:account AS uuid)"
        " AND remaining > 0 AND expires_at <= CAST(:now AS timestamptz))"
        if take
        else ""
    )
    guard = (
        "SELECT NOT EXISTS (SELECT FROM rewards.journal_entries"
        " WHERE tenant_id = CAST(:tenant AS uuid) AND idempotency_key = CAST(:key AS text))"
        f"{due} AS ok"
        if fresh_key
        else "SELECT true AS ok"
    )
    values = ", ".join(
        f"(CAST(:account_{n} AS uuid), CAST(:amount_{n} AS bigint))" for n in range(postings)
    )
    parts = [
        f"guard AS ({guard})",
        """entry AS (
            INSERT INTO rewards.journal_entries (id, tenant_id, kind, customer_id, idempotency_key,
                fingerprint, reason, actor, reverses_entry_id, created_at)
            SELECT CAST(:entry AS uuid), CAST(:tenant AS uuid), CAST(:kind AS text),
                   CAST(:customer AS uuid), CAST(:key AS text), CAST(:fingerprint AS text),
                   CAST(:reason AS text), CAST(:actor AS text), CAST(:reverses AS uuid),
                   CAST(:now AS timestamptz)
              FROM guard WHERE guard.ok
            ON CONFLICT ON CONSTRAINT journal_entries_idempotency DO NOTHING
            RETURNING id)""",
        f"""postings AS (
            INSERT INTO rewards.postings (entry_id, account_id, amount)
            SELECT entry.id, p.account_id, p.amount
              FROM entry, (VALUES {values}) AS p (account_id, amount))""",
        """balance AS (
            UPDATE rewards.accounts SET balance = balance + CAST(:delta AS bigint)
             WHERE id = CAST(:account AS uuid) AND EXISTS (SELECT FROM entry)
            RETURNING balance)""",
    ]
    if lot:
        parts.append(
            """lot AS (
            INSERT INTO rewards.lots (id, tenant_id, account_id, entry_id, points, remaining,
                expires_at, created_at)
            SELECT CAST(:lot AS uuid), CAST(:tenant AS uuid), CAST(:account AS uuid), entry.id,
                   CAST(:lot_points AS bigint), CAST(:lot_points AS bigint),
                   CAST(:expires_at AS timestamptz), CAST(:now AS timestamptz)
              FROM entry)"""
        )
    taken = "0"
    if take:
        parts += [
            # Each open lot with the points of the lots before it in the order they are spent.
            """open_lots AS (
            SELECT id, remaining,
                   CAST(sum(remaining) OVER (ORDER BY expires_at, created_at, id) AS bigint)
                   - remaining AS before
              FROM rewards.lots
             WHERE account_id = CAST(:account AS uuid) AND remaining > 0
               AND EXISTS (SELECT FROM entry))""",
            """picked AS (
            SELECT id, least(remaining, CAST(:take AS bigint) - before) AS points
              FROM open_lots WHERE before < CAST(:take AS bigint))""",
            """consumed AS (
            INSERT INTO rewards.lot_consumptions (lot_id, entry_id, points)
            SELECT picked.id, entry.id, picked.points FROM picked, entry)""",
            """taken AS (
            UPDATE rewards.lots SET remaining = lots.remaining - picked.points
              FROM picked WHERE lots.id = picked.id
            RETURNING picked.points)""",
        ]
        taken = "(SELECT coalesce(sum(points), 0) FROM taken)"
    if outbox is not None:
        parts.append(f"event AS ({outbox_insert(outbox, prefix='event_', select_from='entry')})")
    return text(
        "WITH "
        + ",\n".join(parts)
        + "\nSELECT (SELECT ok FROM guard), (SELECT id FROM entry), (SELECT balance FROM balance),"
        + f" {taken}"
    )


ADD_LOT = text(
    "INSERT INTO rewards.lots (id, tenant_id, account_id, entry_id, points, remaining,"
    " expires_at, created_at) VALUES (:id, :tenant, :account, :entry, :points, :points,"
    " :expires_at, :now)"
)
TAKE_FROM_LOT = text(
    "WITH consumed AS (INSERT INTO rewards.lot_consumptions (lot_id, entry_id, points)"
    " VALUES (:lot, :entry, :points))"
    " UPDATE rewards.lots SET remaining = remaining - CAST(:points AS bigint)"
    " WHERE id = CAST(:lot AS uuid)"
)
