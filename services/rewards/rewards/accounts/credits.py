"""Many earn credits in one statement: the event path's ledger (a batch of rule payouts).

:func:`earn_many` writes what :func:`rewards.accounts.service.earn` writes for each credit
(the entry, its two postings, the new balance, the lot, the ``points.credited`` event), for a
whole batch in one statement of data-modifying CTEs over arrays: the per-credit round trips
(two each) were most of the consumer's CPU (bench/RESULTS.md, "rewards' event path").

The caller holds every customer's account (``service.hold_accounts``, which read their
balances under the lock), so each balance after its credit is known beforehand, for the
events. All or nothing: when a key of the batch was used already nothing is written and the
caller takes the one-credit path (which replays or refuses as ``earn`` does); if fewer
entries than credits were written (a key taken at this moment by another transaction) the
statement's transaction is broken off with an error, to be retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events.outbox import wrapped_envelope
from crm_shared.telemetry import current_traceparent
from rewards.accounts.checks import check_key, check_points, check_reason, fingerprint
from rewards.accounts.events import PointsCredited
from rewards.accounts.ledger_sql import EARN_MANY
from rewards.accounts.models import Account, AccountKind, EntryKind


@dataclass(frozen=True)
class HeldAccount:
    """A customer's account locked by ``hold_accounts``: its id and balance under the lock."""

    id: uuid.UUID
    balance: int


@dataclass(frozen=True)
class Credit:
    """One earn of a batch: ``points`` to ``customer_id`` under ``idempotency_key``."""

    customer_id: uuid.UUID
    points: int
    reason: str
    idempotency_key: str


class CreditRace(RuntimeError):
    """Fewer entries were written than credits asked: another transaction took a key."""


async def earn_many(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    accounts: dict[uuid.UUID, HeldAccount],
    credits: Sequence[Credit],
    actor: str,
    ttl_days: int,
    now: datetime,
) -> list[uuid.UUID] | None:
    """Credit each of ``credits`` in order (one statement); the entry id of each, or None
    (nothing written) when one of their keys was used before."""
    if not credits:
        return []
    expires_at = now + timedelta(days=ttl_days)
    balances = {customer_id: held.balance for customer_id, held in accounts.items()}
    source = session.info["source"]
    trace_headers = current_traceparent()
    # A plain UUID: one read through the ORM is asyncpg's own type, which orjson refuses.
    tenant = uuid.UUID(int=tenant_id.int)
    entries, keys, prints, reasons, points, lots = [], [], [], [], [], []
    account_ids, customers = [], []
    event_ids, routing_keys, bodies = [], [], []
    for credit in credits:
        entry_id = uuid.uuid4()
        amount = check_points(credit.points)
        reason = check_reason(credit.reason)
        key = check_key(credit.idempotency_key)
        balances[credit.customer_id] += amount
        envelope, body = wrapped_envelope(
            PointsCredited(
                customer_id=credit.customer_id,
                entry_id=entry_id,
                kind=EntryKind.EARN.value,
                points=amount,
                balance_after=balances[credit.customer_id],
                reason=reason,
            ),
            source=source,
            tenant_id=tenant,
            subject=str(credit.customer_id),
            trace_headers=trace_headers,
        )
        entries.append(entry_id)
        keys.append(key)
        prints.append(
            fingerprint(
                kind=EntryKind.EARN, customer=credit.customer_id, points=amount, reason=reason
            )
        )
        reasons.append(reason)
        points.append(amount)
        lots.append(uuid.uuid4())
        account_ids.append(accounts[credit.customer_id].id)
        customers.append(credit.customer_id)
        event_ids.append(envelope.id)
        routing_keys.append(envelope.routing_key)
        bodies.append(body.decode())
    row = (
        await session.execute(
            EARN_MANY(session.info["schema"]),
            {
                "tenant": tenant_id,
                "counterpart": AccountKind.EXPENSE.value,
                "kind": EntryKind.EARN.value,
                "actor": actor,
                "now": now,
                "expires_at": expires_at,
                "entries": entries,
                "accounts": account_ids,
                "customers": customers,
                "keys": keys,
                "prints": prints,
                "reasons": reasons,
                "points": points,
                "lots": lots,
                "event_ids": event_ids,
                "event_types": [PointsCredited.type] * len(credits),
                "routing_keys": routing_keys,
                "envelopes": bodies,
            },
        )
    ).one()
    ok, written, counterpart_found, after_ids, after_balances = row
    if not ok:
        return None
    if not counterpart_found:
        raise RuntimeError(f"tenant {tenant_id} has no {AccountKind.EXPENSE.value} account")
    if written != len(credits):
        raise CreditRace(f"{len(credits) - written} of {len(credits)} credits were not written")
    expected = {accounts[c].id: balance for c, balance in balances.items() if c in set(customers)}
    if dict(zip(after_ids or [], after_balances or [], strict=True)) != expected:
        raise RuntimeError("a credited account changed although it was locked")
    _refresh_loaded(session, expected)
    return entries


def _refresh_loaded(session: AsyncSession, balances: dict[uuid.UUID, int]) -> None:
    """An ``Account`` loaded in the session gets its new balance as committed state."""
    identity_map = session.sync_session.identity_map
    if not identity_map:
        return
    for account_id, balance in balances.items():
        loaded = identity_map.get(identity_key(Account, account_id))
        if isinstance(loaded, Account):
            set_committed_value(loaded, "balance", balance)
