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

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from rewards.accounts.events import PointsCredited, PointsDebited, PointsExpired, PointsMoved
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

DEFAULT_TTL_DAYS = 365
MAX_POINTS = 1_000_000_000
MAX_KEY_LENGTH = 200
MAX_REASON_LENGTH = 500
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


# Validation -------------------------------------------------------------------------------


def _check_points(points: int, *, allow_negative: bool = False) -> int:
    if points == 0 or (points < 0 and not allow_negative):
        rule = "must not be 0" if allow_negative else "must be greater than 0"
        raise BadUserInput(f"points: {rule}", field="points")
    if abs(points) > MAX_POINTS:
        raise BadUserInput(f"points: must be at most {MAX_POINTS}", field="points")
    return points


def _check_reason(reason: str) -> str:
    cleaned = reason.strip()
    if not cleaned:
        raise BadUserInput("reason: must not be empty", field="reason")
    if len(cleaned) > MAX_REASON_LENGTH:
        raise BadUserInput(
            f"reason: must be at most {MAX_REASON_LENGTH} characters", field="reason"
        )
    return cleaned


def _check_key(key: str) -> str:
    if not key.strip():
        raise BadUserInput("idempotencyKey: must not be empty", field="idempotencyKey")
    if len(key) > MAX_KEY_LENGTH:
        raise BadUserInput(
            f"idempotencyKey: must be at most {MAX_KEY_LENGTH} characters",
            field="idempotencyKey",
        )
    return key


def request_key(caller_key: str) -> str:
    """The ledger key of a caller's idempotency key (``request:<key>``)."""
    return f"request:{_check_key(caller_key)}"


def fingerprint(**content: Any) -> str:
    """A stable hash of an entry's content (what it does, not when or by whom)."""
    canonical = orjson.dumps({k: str(v) for k, v in content.items()}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


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


async def _replay(
    session: AsyncSession, account: Account, key: str, print_: str
) -> Movement | None:
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


async def _write_entry(
    session: AsyncSession,
    *,
    account: Account,
    kind: EntryKind,
    key: str,
    print_: str,
    reason: str,
    actor: str,
    postings: Sequence[tuple[uuid.UUID, int]],
    reverses: uuid.UUID | None = None,
    now: datetime,
) -> Movement:
    """One balanced entry with its postings; updates the customer's cached balance."""
    assert account.customer_id is not None
    assert sum(amount for _, amount in postings) == 0, "an entry's postings sum to zero"
    entry = JournalEntry(
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
    inserted = await session.execute(
        insert(JournalEntry)
        .values(entry.model_dump())
        .on_conflict_do_nothing(constraint="journal_entries_idempotency")
        .returning(col(JournalEntry.id))
    )
    if inserted.first() is None:
        # The same key, used at this moment for another customer's account.
        raise Conflict("idempotency key reused with different content", field="idempotencyKey")
    await session.execute(
        insert(Posting).values(
            [
                {"entry_id": entry.id, "account_id": account_id, "amount": amount}
                for account_id, amount in postings
            ]
        )
    )
    delta = sum(amount for account_id, amount in postings if account_id == account.id)
    balance = (
        await session.execute(
            update(Account)
            .where(col(Account.id) == account.id)
            .values(balance=col(Account.balance) + delta)
            .returning(col(Account.balance))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    account.balance = balance
    await _announce(session, account, entry, delta)
    return Movement(entry=entry, points=delta, balance_after=balance)


async def _announce(
    session: AsyncSession, account: Account, entry: JournalEntry, delta: int
) -> None:
    """The points event of ``entry``'s change of ``delta`` to the customer ``account``."""
    event_type: type[PointsMoved] = PointsCredited if delta > 0 else PointsDebited
    if entry.kind == EntryKind.EXPIRE:
        event_type = PointsExpired
    await record_event(
        session,
        event_type(
            customer_id=account.customer_id,
            entry_id=entry.id,
            kind=entry.kind,
            points=abs(delta),
            balance_after=account.balance,
            reason=entry.reason,
        ),
        tenant_id=account.tenant_id,
        subject=str(account.customer_id),
    )


async def _add_lot(
    session: AsyncSession,
    account: Account,
    entry_id: uuid.UUID,
    points: int,
    expires_at: datetime,
    now: datetime,
) -> None:
    await session.execute(
        insert(Lot).values(
            id=uuid.uuid4(),
            tenant_id=account.tenant_id,
            account_id=account.id,
            entry_id=entry_id,
            points=points,
            remaining=points,
            expires_at=expires_at,
            created_at=now,
        )
    )


async def _take_from_lot(
    session: AsyncSession, lot_id: uuid.UUID, entry_id: uuid.UUID, points: int
) -> None:
    await session.execute(
        insert(LotConsumption).values(lot_id=lot_id, entry_id=entry_id, points=points)
    )
    await session.execute(
        update(Lot)
        .where(col(Lot.id) == lot_id)
        .values(remaining=col(Lot.remaining) - points)
        .execution_options(synchronize_session=False)
    )


async def _open_lots(session: AsyncSession, account: Account) -> list[tuple[uuid.UUID, int]]:
    """The account's lots with points left, oldest expiring first: (id, remaining)."""
    rows = await session.execute(
        select(Lot.id, Lot.remaining)
        .where(Lot.account_id == account.id, col(Lot.remaining) > 0)
        .order_by(col(Lot.expires_at), col(Lot.created_at), col(Lot.id))
    )
    return [(id_, int(remaining)) for id_, remaining in rows.all()]


async def _consume(
    session: AsyncSession, account: Account, entry_id: uuid.UUID, points: int
) -> None:
    """Take ``points`` from the account's lots, oldest expiring first."""
    left = points
    for lot_id, remaining in await _open_lots(session, account):
        if left == 0:
            break
        taken = min(left, remaining)
        await _take_from_lot(session, lot_id, entry_id, taken)
        left -= taken
    if left:
        raise RuntimeError(f"lots of account {account.id} hold less than its balance")


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
        points=_check_points(points),
        reason=_check_reason(reason),
        idempotency_key=_check_key(idempotency_key),
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
        points=_check_points(points),
        reason=_check_reason(reason),
        idempotency_key=_check_key(idempotency_key),
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
    points = _check_points(points, allow_negative=True)
    args: dict[str, Any] = {
        "kind": EntryKind.ADJUSTMENT,
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "points": abs(points),
        "reason": _check_reason(reason),
        "idempotency_key": _check_key(idempotency_key),
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
    account = await _lock_account(session, tenant_id, customer_id)
    print_ = fingerprint(kind=kind, customer=customer_id, points=points, reason=reason)
    if (replay := await _replay(session, account, idempotency_key, print_)) is not None:
        return replay
    accounts = await tenant_accounts(session, tenant_id)
    movement = await _write_entry(
        session,
        account=account,
        kind=kind,
        key=idempotency_key,
        print_=print_,
        reason=reason,
        actor=actor,
        postings=[(account.id, points), (accounts[AccountKind.EXPENSE], -points)],
        now=now,
    )
    await _add_lot(session, account, movement.entry.id, points, now + timedelta(days=ttl_days), now)
    return movement


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
    # Sign marks a debit in the fingerprint, so a key used for +n cannot replay as -n.
    account = await _lock_account(session, tenant_id, customer_id)
    print_ = fingerprint(kind=kind, customer=customer_id, points=-points, reason=reason)
    if (replay := await _replay(session, account, idempotency_key, print_)) is not None:
        return replay
    # Points past their expiry are not spendable, even before the scheduler got to them.
    await _expire_account(session, account, now)
    if account.balance < points:
        raise BadUserInput(f"insufficient points: the balance is {account.balance}", field="points")
    accounts = await tenant_accounts(session, tenant_id)
    counterpart = accounts[
        AccountKind.REDEMPTION if kind is EntryKind.SPEND else AccountKind.EXPENSE
    ]
    movement = await _write_entry(
        session,
        account=account,
        kind=kind,
        key=idempotency_key,
        print_=print_,
        reason=reason,
        actor=actor,
        postings=[(account.id, -points), (counterpart, points)],
        now=now,
    )
    await _consume(session, account, movement.entry.id, points)
    return movement


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
    reason = _check_reason(reason)
    idempotency_key = _check_key(idempotency_key)
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
        kind=EntryKind.REVERSAL,
        key=idempotency_key,
        print_=print_,
        reason=reason,
        actor=actor,
        postings=[(account_id, -int(amount)) for account_id, amount in postings],
        reverses=entry_id,
        now=now,
    )
    if delta < 0:
        for lot in own:
            await _take_from_lot(session, lot.id, movement.entry.id, lot.points)
    for expires_at, points in lots:
        await _add_lot(session, account, movement.entry.id, points, expires_at, now)
    return movement


async def _expire_account(session: AsyncSession, account: Account, now: datetime) -> list[Movement]:
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
            kind=EntryKind.EXPIRE,
            key=key,
            print_=print_,
            reason="expired",
            actor="system:expiry",
            postings=[
                (account.id, -lot.remaining),
                (accounts[AccountKind.BREAKAGE], lot.remaining),
            ],
            now=now,
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
    key = _check_key(idempotency_key)
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
        kind=EntryKind.TRANSFER,
        key=key,
        print_=print_,
        reason=_check_reason(reason),
        actor=actor,
        postings=[(source.id, -points), (target.id, points)],
        now=now,
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


# Reading ----------------------------------------------------------------------------------


async def get_balances(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Balances of the customers among ``customer_ids`` that have an account."""
    rows = await session.execute(
        select(Account.customer_id, Account.balance).where(
            Account.tenant_id == tenant_id,
            Account.kind == AccountKind.CUSTOMER.value,
            col(Account.customer_id).in_(customer_ids),
        )
    )
    return {customer_id: int(balance) for customer_id, balance in rows.all() if customer_id}


async def expiring_soon(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    within: timedelta,
    now: datetime | None = None,
) -> list[tuple[int, datetime]]:
    """Points that expire within ``within``, grouped by expiry time, soonest first."""
    now = now or utcnow()
    rows = await session.execute(
        select(func.sum(Lot.remaining), Lot.expires_at)
        .join(Account, col(Account.id) == col(Lot.account_id))
        .where(
            Account.tenant_id == tenant_id,
            Account.customer_id == customer_id,
            col(Lot.remaining) > 0,
            col(Lot.expires_at) <= now + within,
        )
        .group_by(col(Lot.expires_at))
        .order_by(col(Lot.expires_at))
    )
    return [(int(points), expires_at) for points, expires_at in rows.all()]


async def history(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[tuple[JournalEntry, int]]:
    """The customer's entries newest first, each with its change to their balance."""
    query = (
        select(JournalEntry, Posting.amount)
        .join(Posting, col(Posting.entry_id) == col(JournalEntry.id))
        .join(Account, col(Account.id) == col(Posting.account_id))
        .where(
            JournalEntry.tenant_id == tenant_id,
            Account.customer_id == customer_id,
            Account.kind == AccountKind.CUSTOMER.value,
        )
        .order_by(col(JournalEntry.created_at).desc(), col(JournalEntry.id).desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(
            tuple_(col(JournalEntry.created_at), col(JournalEntry.id)) < tuple_(*before)
        )
    rows = await session.execute(query)
    return [(entry, int(amount)) for entry, amount in rows.all()]


async def check_ledger(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    """What is wrong with the tenant's ledger; an empty list proves it consistent.

    Checks that every entry's postings sum to zero, every cached balance equals the sum of
    its account's postings and is not negative, lots hold exactly the balance (and their
    remaining points match their consumptions), and nothing posts to the liability account.
    """
    problems: list[str] = []
    queries = {
        "entry does not balance": """
            SELECT e.id::text, coalesce(sum(p.amount), 0)
              FROM rewards.journal_entries e LEFT JOIN rewards.postings p ON p.entry_id = e.id
             WHERE e.tenant_id = :t GROUP BY e.id
            HAVING coalesce(sum(p.amount), 0) <> 0 OR count(p.id) < 2""",
        "cached balance differs from postings": """
            SELECT a.id::text, a.balance - coalesce(sum(p.amount), 0)
              FROM rewards.accounts a LEFT JOIN rewards.postings p ON p.account_id = a.id
             WHERE a.tenant_id = :t AND a.kind = 'customer' GROUP BY a.id
            HAVING a.balance <> coalesce(sum(p.amount), 0)""",
        "negative balance": """
            SELECT a.id::text, a.balance FROM rewards.accounts a
             WHERE a.tenant_id = :t AND a.kind = 'customer' AND a.balance < 0""",
        "lots differ from balance": """
            SELECT a.id::text, a.balance - coalesce(sum(l.remaining), 0)
              FROM rewards.accounts a LEFT JOIN rewards.lots l ON l.account_id = a.id
             WHERE a.tenant_id = :t AND a.kind = 'customer' GROUP BY a.id
            HAVING a.balance <> coalesce(sum(l.remaining), 0)""",
        "lot remaining differs from consumptions": """
            SELECT l.id::text, l.points - coalesce(sum(c.points), 0) - l.remaining
              FROM rewards.lots l LEFT JOIN rewards.lot_consumptions c ON c.lot_id = l.id
             WHERE l.tenant_id = :t GROUP BY l.id
            HAVING l.points - coalesce(sum(c.points), 0) <> l.remaining""",
        "posting on the liability account": """
            SELECT p.entry_id::text, p.amount FROM rewards.postings p
              JOIN rewards.accounts a ON a.id = p.account_id
             WHERE a.tenant_id = :t AND a.kind = 'liability'""",
    }
    for problem, sql in queries.items():
        for subject, amount in (await session.execute(text(sql), {"t": tenant_id})).all():
            problems.append(f"{problem}: {subject} ({amount})")
    return problems
