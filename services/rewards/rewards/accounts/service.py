"""The points ledger's operations: earn, spend, adjust, reverse, expire, transfer, and reading
it back.

Every operation runs in the caller's transaction and:

- locks the customer's account row (``SELECT ... FOR UPDATE``) first, so that movements of one
  customer happen one after another and a balance is never overdrawn;
- looks up its idempotency key: the same key with the same content returns the entry made the
  first time; with different content it is a CONFLICT;
- writes one journal entry whose postings sum to zero, moves lots, updates the cached balance
  and records the event in the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.events.outbox import (
    outbox_envelope,
    outbox_params,
    wrapped_envelope,
)
from crm_shared.telemetry import current_traceparent
from rewards.accounts.checks import check_key, check_points, check_reason, fingerprint
from rewards.accounts.checks import request_key as request_key
from rewards.accounts.credits import HeldAccount
from rewards.accounts.events import PointsCredited, PointsDebited, PointsExpired, PointsMoved
from rewards.accounts.ledger_sql import ADD_LOT as _ADD_LOT
from rewards.accounts.ledger_sql import CREDIT_ONE
from rewards.accounts.ledger_sql import LOCK_CUSTOMER_ACCOUNT as _LOCK_CUSTOMER_ACCOUNT
from rewards.accounts.ledger_sql import LOCK_CUSTOMER_ACCOUNTS as _LOCK_CUSTOMER_ACCOUNTS
from rewards.accounts.ledger_sql import LOCK_FOR_MOVEMENT as _LOCK_FOR_MOVEMENT
from rewards.accounts.ledger_sql import TAKE_FROM_LOT as _TAKE_FROM_LOT
from rewards.accounts.ledger_sql import entry_statement as _entry_statement
from rewards.accounts.models import (
    TENANT_ACCOUNT_KINDS,
    Account,
    AccountKind,
    EntryKind,
    JournalEntry,
    Lot,
    LotConsumption,
    Posting,
)
from rewards.accounts.reading import check_ledger as check_ledger
from rewards.accounts.reading import expiring_soon as expiring_soon
from rewards.accounts.reading import get_balances as get_balances
from rewards.accounts.reading import history as history

DEFAULT_TTL_DAYS = 365
REVERSIBLE = (EntryKind.EARN, EntryKind.SPEND, EntryKind.ADJUSTMENT)


@dataclass(frozen=True)
class Movement:
    """An entry, its change to the customer's balance and the balance after it.

    ``replayed``: the key had been used with the same content; this is the first entry (its
    balance is the current one).
    """

    entry: JournalEntry
    points: int
    balance_after: int
    replayed: bool = False


# Accounts ---------------------------------------------------------------------------------


async def tenant_accounts(
    session: AsyncSession, tenant_id: uuid.UUID
) -> dict[AccountKind, uuid.UUID]:
    """The tenant's liability, expense, redemption and breakage accounts (made on first use)."""

    async def read() -> dict[AccountKind, uuid.UUID]:
        rows = await session.execute(
            select(Account.kind, Account.id).where(
                Account.tenant_id == tenant_id, col(Account.customer_id).is_(None)
            )
        )
        return {AccountKind(kind): id_ for kind, id_ in rows.all()}

    found = await read()
    if len(found) == len(TENANT_ACCOUNT_KINDS):
        return found
    now = utcnow()
    await session.execute(
        insert(Account)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "kind": kind.value,
                    "customer_id": None,
                    "balance": 0,
                    "created_at": now,
                }
                for kind in TENANT_ACCOUNT_KINDS
            ]
        )
        .on_conflict_do_nothing(
            index_elements=["tenant_id", "kind"], index_where=text("customer_id IS NULL")
        )
    )
    return await read()


async def open_account(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> Account:
    """The customer's account, opened if it does not exist yet (safe under concurrency)."""
    await _ensure_account(session, tenant_id, customer_id)
    return await _lock_account(session, tenant_id, customer_id)


async def hold_account(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> None:
    """Lock the customer's account until the transaction ends, opening it if there is none.

    :func:`open_account` for callers that want the lock, not the object: one statement when
    the account exists (every event of a known customer), no ORM object loaded.
    """
    held = await session.execute(
        _LOCK_CUSTOMER_ACCOUNT, {"tenant": tenant_id, "customer": customer_id}
    )
    if held.first() is None:
        await open_account(session=session, tenant_id=tenant_id, customer_id=customer_id)


async def hold_accounts(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, HeldAccount]:
    """:func:`hold_account` for many customers: the existing accounts locked in one statement,
    in the order of their customer ids (two transactions locking overlapping sets wait for
    each other instead of deadlocking), then the missing ones opened, in the same order.
    Each customer's account id and balance under the lock."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    held = await session.execute(
        _LOCK_CUSTOMER_ACCOUNTS, {"tenant": tenant_id, "customers": wanted}
    )
    found = {row[0]: HeldAccount(id=row[1], balance=int(row[2])) for row in held.all()}
    for customer_id in wanted:
        if customer_id not in found:
            account = await open_account(
                session=session, tenant_id=tenant_id, customer_id=customer_id
            )
            found[customer_id] = HeldAccount(id=account.id, balance=account.balance)
    return found


async def _ensure_account(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> None:
    accounts = await tenant_accounts(session, tenant_id)
    await session.execute(
        insert(Account)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            kind=AccountKind.CUSTOMER.value,
            customer_id=customer_id,
            parent_id=accounts[AccountKind.LIABILITY],
            balance=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(constraint="accounts_tenant_customer")
    )


async def _lock_account(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> Account:
    """The customer's account, locked until the transaction ends; NOT_FOUND without one."""
    account = (
        await session.exec(
            select(Account)
            .where(
                Account.tenant_id == tenant_id,
                Account.customer_id == customer_id,
                Account.kind == AccountKind.CUSTOMER.value,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if account is None:
        raise NotFound("customerId: this customer has no rewards account", field="customerId")
    return account


async def _lock_account_by_id(session: AsyncSession, account_id: uuid.UUID) -> Account:
    account = (
        await session.exec(
            select(Account)
            .where(Account.id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    return account


# Writing entries --------------------------------------------------------------------------
#
# The movements' own statements are hand-written SQL (``text``) rather than ORM constructs:
# the ledger's cost was Python, not PostgreSQL (bench/RESULTS.md, "Ledger"), and most of it was
# building, caching and flushing ORM statements and objects. An earn or a spend is one
# statement after its lock, which writes the entry with everything that belongs to it:
# postings, the balance, the lot or the lots taken, the outbox row.


@dataclass
class _Locked:
    """A customer's account as ``_lock_for_movement`` read it, with what the movement needs.

    ``key_used`` and ``due`` may be stale when the lock had to wait for another transaction
    (the statement's snapshot predates it): they only choose the fast path, whose writing
    statement checks both again in a fresh snapshot.
    """

    id: uuid.UUID
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    balance: int
    counterpart: uuid.UUID | None = None
    key_used: bool = False
    due: bool = False


# A customer's account: an ORM object (``_lock_account``) or a ``_Locked`` one.
_Held = Account | _Locked


async def _lock_for_movement(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    key: str,
    counterpart: AccountKind,
    now: datetime,
) -> _Locked:
    """The customer's account, locked until the transaction ends, in one statement with the
    id of the tenant's ``counterpart`` account, whether ``key`` was used and whether lots are
    due at ``now``; NOT_FOUND without an account."""
    row = (
        await session.execute(
            _LOCK_FOR_MOVEMENT,
            {
                "tenant": tenant_id,
                "customer": customer_id,
                "counterpart": counterpart.value,
                "key": key,
                "now": now,
            },
        )
    ).first()
    if row is None:
        raise NotFound("customerId: this customer has no rewards account", field="customerId")
    account_id, balance, counterpart_id, key_used, due = row
    return _Locked(
        id=account_id,
        tenant_id=tenant_id,
        customer_id=customer_id,
        balance=int(balance),
        counterpart=counterpart_id,
        key_used=bool(key_used),
        due=bool(due),
    )


def _set_balance(session: AsyncSession, account: _Held, balance: int) -> None:
    """Keep ``account``'s balance current, and so the session's loaded copy of it if any.

    A loaded ``Account`` gets the value as its committed state: the database has it already,
    an ORM change would only write it again at the next flush.
    """
    loaded: object = account
    if isinstance(account, _Locked):
        account.balance = balance
        identity_map = session.sync_session.identity_map
        loaded = identity_map.get(identity_key(Account, account.id)) if identity_map else None
    if isinstance(loaded, Account):
        set_committed_value(loaded, "balance", balance)


async def _replay(session: AsyncSession, account: _Held, key: str, print_: str) -> Movement | None:
    """The entry already made for ``key`` (same content), CONFLICT (other content), or None."""
    existing = (
        await session.exec(
            select(JournalEntry).where(
                JournalEntry.tenant_id == account.tenant_id,
                JournalEntry.idempotency_key == key,
            )
        )
    ).first()
    if existing is None:
        return None
    if existing.fingerprint != print_:
        raise Conflict("idempotency key reused with different content", field="idempotencyKey")
    points = (
        await session.execute(
            select(Posting.amount).where(
                Posting.entry_id == existing.id, Posting.account_id == account.id
            )
        )
    ).scalar_one()
    return Movement(
        entry=existing, points=int(points), balance_after=account.balance, replayed=True
    )


@dataclass(frozen=True)
class EntryDraft:
    """What an entry says, whatever it moves: kind, key and fingerprint, reason, actor, time,
    and the entry it reverses."""

    kind: EntryKind
    key: str
    print_: str
    reason: str
    actor: str
    now: datetime
    reverses: uuid.UUID | None = None


@dataclass(frozen=True)
class _Inserted:
    """What ``_insert`` did: the entry and the customer's new balance, or nothing."""

    entry: JournalEntry | None
    balance: int
    # False: nothing written as the key was used or lots are due (checked with ``fresh_key``).
    checked: bool


async def _insert(
    session: AsyncSession,
    *,
    account: _Held,
    draft: EntryDraft,
    postings: Sequence[tuple[uuid.UUID, int]],
    lot_expires_at: datetime | None = None,
    take: int = 0,
    fresh_key: bool = False,
    announce: bool = False,
) -> _Inserted:
    """One balanced entry with its postings and the customer's new cached balance, in one
    statement; with ``lot_expires_at`` the credit's lot, with ``take`` the points taken from
    the open lots, with ``announce`` its event.

    Nothing is written when the key is taken (by another customer's entry being written at
    this moment), nor, with ``fresh_key``, when the key was used or (with ``take``) lots are
    due. The account is locked: its balance after the entry is known beforehand, for the event.
    """
    assert account.customer_id is not None
    assert sum(amount for _, amount in postings) == 0, "an entry's postings sum to zero"
    kind, key, print_, reason, actor, now, reverses = (
        draft.kind,
        draft.key,
        draft.print_,
        draft.reason,
        draft.actor,
        draft.now,
        draft.reverses,
    )
    entry_id = uuid.uuid4()
    delta = sum(amount for account_id, amount in postings if account_id == account.id)
    params: dict[str, Any] = {
        "entry": entry_id,
        "tenant": account.tenant_id,
        "kind": kind.value,
        "customer": account.customer_id,
        "key": key,
        "fingerprint": print_,
        "reason": reason,
        "actor": actor,
        "reverses": reverses,
        "now": now,
        "account": account.id,
        "delta": delta,
    }
    for n, (account_id, amount) in enumerate(postings):
        params[f"account_{n}"] = account_id
        params[f"amount_{n}"] = amount
    if lot_expires_at is not None:
        params |= {"lot": uuid.uuid4(), "lot_points": delta, "expires_at": lot_expires_at}
    if take:
        params["take"] = take
    if announce:
        event = _points_event(account, entry_id, kind.value, reason, delta, account.balance + delta)
        envelope = outbox_envelope(
            session, event, tenant_id=account.tenant_id, subject=str(account.customer_id)
        )
        params |= outbox_params(envelope, prefix="event_")
    statement = _entry_statement(
        len(postings),
        lot=lot_expires_at is not None,
        take=bool(take),
        fresh_key=fresh_key,
        outbox=session.info["schema"] if announce else None,
    )
    checked, inserted, balance, taken = (await session.execute(statement, params)).one()
    if inserted is None:
        return _Inserted(entry=None, balance=account.balance, checked=bool(checked))
    if int(taken) != take:
        raise RuntimeError(f"lots of account {account.id} hold less than its balance")
    if announce and balance != account.balance + delta:
        raise RuntimeError(f"account {account.id} changed although it was locked")
    _set_balance(session, account, int(balance))
    entry = JournalEntry(
        id=entry_id,
        tenant_id=account.tenant_id,
        kind=kind.value,
        customer_id=account.customer_id,
        idempotency_key=key,
        fingerprint=print_,
        reason=reason,
        actor=actor,
        reverses_entry_id=reverses,
        created_at=now,
    )
    return _Inserted(entry=entry, balance=int(balance), checked=True)


async def _write_entry(
    session: AsyncSession,
    *,
    account: _Held,
    draft: EntryDraft,
    postings: Sequence[tuple[uuid.UUID, int]],
) -> Movement:
    """One balanced entry with its postings and its event; updates the customer's cached
    balance (``account`` is locked, its balance current)."""
    inserted = await _insert(
        session, account=account, draft=draft, postings=postings, announce=True
    )
    if inserted.entry is None:
        # The same key, used at this moment for another customer's account.
        raise Conflict("idempotency key reused with different content", field="idempotencyKey")
    delta = sum(amount for account_id, amount in postings if account_id == account.id)
    return Movement(entry=inserted.entry, points=delta, balance_after=inserted.balance)


async def _move(
    session: AsyncSession,
    *,
    account: _Locked,
    draft: EntryDraft,
    points: int,
    counterpart: AccountKind,
    lot_expires_at: datetime | None = None,
) -> Movement:
    """An earn's, a spend's or an adjustment's entry of ``points`` (negative: a debit) on the
    account locked by ``_lock_for_movement``, against the tenant's ``counterpart`` account.

    The outcome is that of these steps in this order: the replay check; for a debit the
    expiry of due lots and the balance check; the entry with its postings, the new balance and
    the credit's lot or the points the debit takes from lots, and its event. The fast path
    (the lock saw the key unused, for a debit no lot due and the balance enough) is the
    entry's one statement, which checks key and lots again in its own snapshot; otherwise, or
    when that check fails (another transaction committed while the lock waited), the steps
    run one by one.
    """
    key, print_, now = draft.key, draft.print_, draft.now
    take = max(-points, 0)
    fast = (
        account.counterpart is not None
        and not account.key_used
        and not (take and account.due)
        and account.balance >= take
    )
    for _ in range(3):
        if not fast:
            if (replay := await _replay(session, account, key, print_)) is not None:
                return replay
            if take:
                # Points past their expiry are not spendable, even before the scheduler got
                # to them.
                await _expire_account(session, account, now)
                if account.balance < take:
                    raise BadUserInput(
                        f"insufficient points: the balance is {account.balance}", field="points"
                    )
            if account.counterpart is None:
                accounts = await tenant_accounts(session, account.tenant_id)
                account.counterpart = accounts[counterpart]
        assert account.counterpart is not None
        inserted = await _insert(
            session,
            account=account,
            draft=draft,
            postings=[(account.id, points), (account.counterpart, -points)],
            lot_expires_at=lot_expires_at,
            take=take,
            fresh_key=True,
            announce=True,
        )
        if inserted.entry is not None:
            return Movement(entry=inserted.entry, points=points, balance_after=inserted.balance)
        if inserted.checked:
            # The same key, used at this moment for another customer's account.
            break
        fast = False
    raise Conflict("idempotency key reused with different content", field="idempotencyKey")


def _points_event(
    account: _Held,
    entry_id: uuid.UUID,
    kind: str,
    reason: str,
    delta: int,
    balance_after: int,
) -> PointsMoved:
    """The points event of an entry's change of ``delta`` to the customer ``account``."""
    event_type: type[PointsMoved] = PointsCredited if delta > 0 else PointsDebited
    if kind == EntryKind.EXPIRE:
        event_type = PointsExpired
    return event_type(
        customer_id=account.customer_id,
        entry_id=entry_id,
        kind=kind,
        points=abs(delta),
        balance_after=balance_after,
        reason=reason,
    )


async def _announce(session: AsyncSession, account: _Held, entry: JournalEntry, delta: int) -> None:
    """The points event of ``entry``'s change of ``delta`` to the customer ``account``."""
    await record_event(
        session,
        _points_event(account, entry.id, entry.kind, entry.reason, delta, account.balance),
        tenant_id=account.tenant_id,
        subject=str(account.customer_id),
    )


async def _add_lot(
    session: AsyncSession,
    account: _Held,
    entry_id: uuid.UUID,
    points: int,
    expires_at: datetime,
    now: datetime,
) -> None:
    await session.execute(
        _ADD_LOT,
        {
            "id": uuid.uuid4(),
            "tenant": account.tenant_id,
            "account": account.id,
            "entry": entry_id,
            "points": points,
            "expires_at": expires_at,
            "now": now,
        },
    )


async def _take_from_lot(
    session: AsyncSession, lot_id: uuid.UUID, entry_id: uuid.UUID, points: int
) -> None:
    """Record that ``entry_id`` took ``points`` from the lot, and take them off it."""
    await session.execute(_TAKE_FROM_LOT, {"lot": lot_id, "entry": entry_id, "points": points})


# Operations -------------------------------------------------------------------------------


async def earn(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    ttl_days: int = DEFAULT_TTL_DAYS,
    now: datetime | None = None,
) -> Movement:
    """Credit earned points as a new lot expiring ``ttl_days`` from now."""
    return await _credit(
        session,
        kind=EntryKind.EARN,
        tenant_id=tenant_id,
        customer_id=customer_id,
        points=check_points(points),
        reason=check_reason(reason),
        idempotency_key=check_key(idempotency_key),
        actor=actor,
        ttl_days=ttl_days,
        now=now or utcnow(),
    )


async def spend(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    now: datetime | None = None,
) -> Movement:
    """Debit spent points from the lots expiring first; BAD_USER_INPUT if the balance is short."""
    return await _debit(
        session,
        kind=EntryKind.SPEND,
        tenant_id=tenant_id,
        customer_id=customer_id,
        points=check_points(points),
        reason=check_reason(reason),
        idempotency_key=check_key(idempotency_key),
        actor=actor,
        now=now or utcnow(),
    )


async def adjust(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    ttl_days: int = DEFAULT_TTL_DAYS,
    now: datetime | None = None,
) -> Movement:
    """A staff correction: positive points credit a new lot, negative ones debit like a spend."""
    points = check_points(points, allow_negative=True)
    args: dict[str, Any] = {
        "kind": EntryKind.ADJUSTMENT,
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "points": abs(points),
        "reason": check_reason(reason),
        "idempotency_key": check_key(idempotency_key),
        "actor": actor,
        "now": now or utcnow(),
    }
    if points > 0:
        return await _credit(session, ttl_days=ttl_days, **args)
    return await _debit(session, **args)


async def _credit(
    session: AsyncSession,
    *,
    kind: EntryKind,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    ttl_days: int,
    now: datetime,
) -> Movement:
    print_ = fingerprint(kind=kind, customer=customer_id, points=points, reason=reason)
    fast = await _credit_at_once(
        session,
        kind=kind,
        tenant_id=tenant_id,
        customer_id=customer_id,
        points=points,
        reason=reason,
        key=idempotency_key,
        print_=print_,
        actor=actor,
        expires_at=now + timedelta(days=ttl_days),
        now=now,
    )
    if fast is not None:
        return fast
    account = await _lock_for_movement(
        session,
        tenant_id,
        customer_id,
        key=idempotency_key,
        counterpart=AccountKind.EXPENSE,
        now=now,
    )
    return await _move(
        session,
        account=account,
        draft=EntryDraft(kind, idempotency_key, print_, reason, actor, now),
        points=points,
        counterpart=AccountKind.EXPENSE,
        lot_expires_at=now + timedelta(days=ttl_days),
    )


async def _credit_at_once(  # noqa: PLR0913 (to split, issue 18)
    session: AsyncSession,
    *,
    kind: EntryKind,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    key: str,
    print_: str,
    actor: str,
    expires_at: datetime,
    now: datetime,
) -> Movement | None:
    """The credit in one statement (``ledger_sql.CREDIT_ONE``), or None, having written
    nothing, when it needs the locking path: no account, a key used (a replay or a
    conflict), or taken by a movement that committed while this one waited."""
    entry_id = uuid.uuid4()
    envelope, body = wrapped_envelope(
        PointsCredited(
            customer_id=customer_id,
            entry_id=entry_id,
            kind=kind.value,
            points=points,
            balance_after=0,  # set by the statement, from the balance it wrote
            reason=reason,
        ),
        source=session.info["source"],
        # A plain UUID: one read through the ORM is asyncpg's own type, which orjson refuses.
        tenant_id=uuid.UUID(int=tenant_id.int),
        subject=str(customer_id),
        trace_headers=current_traceparent(),
    )
    row = (
        await session.execute(
            CREDIT_ONE(session.info["schema"]),
            {
                "tenant": tenant_id,
                "customer": customer_id,
                "counterpart": AccountKind.EXPENSE.value,
                "entry": entry_id,
                "kind": kind.value,
                "key": key,
                "fingerprint": print_,
                "reason": reason,
                "actor": actor,
                "now": now,
                "points": points,
                "lot": uuid.uuid4(),
                "expires_at": expires_at,
                "event_id": envelope.id,
                "event_type": envelope.type,
                "routing_key": envelope.routing_key,
                "envelope": body.decode(),
            },
        )
    ).one()
    _, inserted, account_id, balance = row
    if inserted is None:
        return None
    identity_map = session.sync_session.identity_map
    loaded = identity_map.get(identity_key(Account, account_id)) if identity_map else None
    if isinstance(loaded, Account):
        set_committed_value(loaded, "balance", int(balance))
    entry = JournalEntry(
        id=entry_id,
        tenant_id=tenant_id,
        kind=kind.value,
        customer_id=customer_id,
        idempotency_key=key,
        fingerprint=print_,
        reason=reason,
        actor=actor,
        reverses_entry_id=None,
        created_at=now,
    )
    return Movement(entry=entry, points=points, balance_after=int(balance))


async def _debit(
    session: AsyncSession,
    *,
    kind: EntryKind,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
) -> Movement:
    counterpart = AccountKind.REDEMPTION if kind is EntryKind.SPEND else AccountKind.EXPENSE
    account = await _lock_for_movement(
        session, tenant_id, customer_id, key=idempotency_key, counterpart=counterpart, now=now
    )
    # Sign marks a debit in the fingerprint, so a key used for +n cannot replay as -n.
    print_ = fingerprint(kind=kind, customer=customer_id, points=-points, reason=reason)
    return await _move(
        session,
        account=account,
        draft=EntryDraft(kind, idempotency_key, print_, reason, actor, now),
        points=-points,
        counterpart=counterpart,
    )


async def reverse(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    entry_id: uuid.UUID,
    reason: str,
    idempotency_key: str,
    actor: str,
    now: datetime | None = None,
) -> Movement:
    """Undo an earn, spend or adjustment with an entry of opposite postings (once per entry).

    Reversing a credit takes back its lot, and only while the lot is untouched: points already
    spent or expired are refused (BAD_USER_INPUT on entryId; adjust instead). Reversing a debit
    gives the points back as new lots that keep the expiry of the lots they came from.
    """
    reason = check_reason(reason)
    idempotency_key = check_key(idempotency_key)
    now = now or utcnow()
    original = (
        await session.exec(
            select(JournalEntry).where(
                JournalEntry.tenant_id == tenant_id, JournalEntry.id == entry_id
            )
        )
    ).first()
    if original is None:
        raise NotFound("entryId: no such ledger entry", field="entryId")
    account = await _lock_account(session, tenant_id, original.customer_id)
    print_ = fingerprint(kind=EntryKind.REVERSAL, entry=entry_id, reason=reason)
    if (replay := await _replay(session, account, idempotency_key, print_)) is not None:
        return replay
    if original.kind not in REVERSIBLE:
        raise BadUserInput(f"entryId: a {original.kind} entry cannot be reversed", field="entryId")
    reversed_by = (
        await session.exec(
            select(JournalEntry.id).where(JournalEntry.reverses_entry_id == entry_id)
        )
    ).first()
    if reversed_by is not None:
        raise Conflict(
            f"entryId: this entry was already reversed by {reversed_by}", field="entryId"
        )
    postings = (
        await session.execute(
            select(Posting.account_id, Posting.amount).where(Posting.entry_id == entry_id)
        )
    ).all()
    delta = -sum(int(amount) for account_id, amount in postings if account_id == account.id)
    lots: list[tuple[datetime, int]] = []
    own: Sequence[Lot] = []
    if delta < 0:
        own = (await session.exec(select(Lot).where(Lot.entry_id == entry_id))).all()
        if any(lot.remaining != lot.points for lot in own):
            raise BadUserInput(
                "entryId: some of these points were already spent or expired; "
                "adjust the balance instead",
                field="entryId",
            )
    else:
        taken = await session.execute(
            select(Lot.expires_at, LotConsumption.points)
            .join(Lot, col(Lot.id) == col(LotConsumption.lot_id))
            .where(LotConsumption.entry_id == entry_id)
            .order_by(col(Lot.expires_at))
        )
        lots = [(expires_at, int(points)) for expires_at, points in taken.all()]
    movement = await _write_entry(
        session,
        account=account,
        draft=EntryDraft(
            EntryKind.REVERSAL, idempotency_key, print_, reason, actor, now, reverses=entry_id
        ),
        postings=[(account_id, -int(amount)) for account_id, amount in postings],
    )
    if delta < 0:
        for lot in own:
            await _take_from_lot(session, lot.id, movement.entry.id, lot.points)
    for expires_at, points in lots:
        await _add_lot(session, account, movement.entry.id, points, expires_at, now)
    return movement


async def _expire_account(session: AsyncSession, account: _Held, now: datetime) -> list[Movement]:
    """Expire the locked account's due lots: one entry per lot, keyed ``expire:<lot id>``."""
    due = (
        await session.exec(
            select(Lot)
            .where(
                Lot.account_id == account.id,
                col(Lot.remaining) > 0,
                col(Lot.expires_at) <= now,
            )
            .order_by(col(Lot.expires_at), col(Lot.id))
            .execution_options(populate_existing=True)
        )
    ).all()
    if not due:
        return []
    accounts = await tenant_accounts(session, account.tenant_id)
    moved = []
    for lot in due:
        key = f"expire:{lot.id}"
        print_ = fingerprint(kind=EntryKind.EXPIRE, lot=lot.id, points=lot.remaining)
        if (replay := await _replay(session, account, key, print_)) is not None:
            moved.append(replay)
            continue
        movement = await _write_entry(
            session,
            account=account,
            draft=EntryDraft(EntryKind.EXPIRE, key, print_, "expired", "system:expiry", now),
            postings=[
                (account.id, -lot.remaining),
                (accounts[AccountKind.BREAKAGE], lot.remaining),
            ],
        )
        await _take_from_lot(session, lot.id, movement.entry.id, lot.remaining)
        moved.append(movement)
    return moved


async def due_accounts(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int = 500,
    tenant_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Accounts (of one tenant, or all) holding lots past their expiry (at most ``limit``)."""
    query = (
        select(Lot.account_id)
        .where(col(Lot.remaining) > 0, col(Lot.expires_at) <= now)
        .group_by(col(Lot.account_id))
        .order_by(col(Lot.account_id))
        .limit(limit)
    )
    if tenant_id is not None:
        query = query.where(Lot.tenant_id == tenant_id)
    rows = await session.execute(query)
    return [account_id for (account_id,) in rows.all()]


async def expire_account(
    session: AsyncSession, account_id: uuid.UUID, *, now: datetime
) -> list[Movement]:
    """Expire one account's due lots (locks the account)."""
    account = await _lock_account_by_id(session, account_id)
    return await _expire_account(session, account, now)


async def expire_due(
    session: AsyncSession, *, now: datetime | None = None, tenant_id: uuid.UUID | None = None
) -> list[Movement]:
    """Expire every due lot (of one tenant, or all) in this transaction.

    The service's scheduler (``rewards.accounts.expiry``) does the same one account per
    transaction.
    """
    now = now or utcnow()
    moved: list[Movement] = []
    for account_id in await due_accounts(session, now=now, limit=10_000, tenant_id=tenant_id):
        moved.extend(await expire_account(session, account_id, now=now))
    return moved


async def transfer(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    from_customer: uuid.UUID,
    to_customer: uuid.UUID,
    reason: str,
    idempotency_key: str,
    actor: str,
    only_lots_of_entry: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Movement | None:
    """Move open lots, with their expiry, from one customer's account to another's.

    One ``transfer`` entry (``from`` −n, ``to`` +n) for all of ``from``'s open lots, or only
    for what is left of the lots that entry ``only_lots_of_entry`` created there (undoing an
    earlier transfer). None when there is nothing to move. ``to``'s account is opened if
    needed; both accounts are locked in id order so that two transfers cannot deadlock.
    """
    now = now or utcnow()
    key = check_key(idempotency_key)
    source_exists = (
        await session.exec(
            select(Account.id).where(
                Account.tenant_id == tenant_id,
                Account.customer_id == from_customer,
                Account.kind == AccountKind.CUSTOMER.value,
            )
        )
    ).first()
    if source_exists is None:
        return None
    await _ensure_account(session, tenant_id, to_customer)
    first, second = sorted((from_customer, to_customer))
    locked = {
        customer: await _lock_account(session, tenant_id, customer) for customer in (first, second)
    }
    source, target = locked[from_customer], locked[to_customer]
    print_ = fingerprint(
        kind=EntryKind.TRANSFER, source=from_customer, target=to_customer, lots=only_lots_of_entry
    )
    if (replay := await _replay(session, target, key, print_)) is not None:
        return replay
    await _expire_account(session, source, now)
    query = select(Lot).where(Lot.account_id == source.id, col(Lot.remaining) > 0)
    if only_lots_of_entry is not None:
        query = query.where(Lot.entry_id == only_lots_of_entry)
    lots = (
        await session.exec(
            query.order_by(col(Lot.expires_at), col(Lot.id)).execution_options(
                populate_existing=True
            )
        )
    ).all()
    points = sum(lot.remaining for lot in lots)
    if points == 0:
        return None
    movement = await _write_entry(
        session,
        account=target,
        draft=EntryDraft(EntryKind.TRANSFER, key, print_, check_reason(reason), actor, now),
        postings=[(source.id, -points), (target.id, points)],
    )
    source.balance = (
        await session.execute(
            update(Account)
            .where(col(Account.id) == source.id)
            .values(balance=col(Account.balance) - points)
            .returning(col(Account.balance))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    await _announce(session, source, movement.entry, -points)
    for lot in lots:
        await _take_from_lot(session, lot.id, movement.entry.id, lot.remaining)
        await _add_lot(session, target, movement.entry.id, lot.remaining, lot.expires_at, now)
    return movement


async def entry_by_key(
    session: AsyncSession, *, tenant_id: uuid.UUID, idempotency_key: str
) -> JournalEntry | None:
    """The tenant's entry made with ``idempotency_key``, if any."""
    return (
        await session.exec(
            select(JournalEntry).where(
                JournalEntry.tenant_id == tenant_id, JournalEntry.idempotency_key == idempotency_key
            )
        )
    ).first()
