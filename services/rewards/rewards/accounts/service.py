"""Operations on points accounts."""

import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import record_event
from rewards.accounts.events import PointsCredited
from rewards.accounts.models import Account, LedgerEntry


async def open_account(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> Account:
    """The customer's account, opened if it does not exist yet (safe under concurrency)."""
    await session.execute(
        insert(Account)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, customer_id=customer_id)
        .on_conflict_do_nothing(constraint="accounts_tenant_customer")
    )
    account = (
        await session.exec(
            select(Account).where(
                Account.tenant_id == tenant_id, Account.customer_id == customer_id
            )
        )
    ).one()
    return account


async def credit_points(
    *,
    session: AsyncSession,
    account: Account,
    points: int,
    reason: str,
    idempotency_key: str,
) -> LedgerEntry | None:
    """Credit ``points`` once per ``idempotency_key``; None when that key was already paid."""
    entry_id = uuid.uuid4()
    inserted = await session.execute(
        insert(LedgerEntry)
        .values(
            id=entry_id,
            tenant_id=account.tenant_id,
            account_id=account.id,
            points=points,
            reason=reason,
            idempotency_key=idempotency_key,
        )
        .on_conflict_do_nothing(constraint="ledger_entries_idempotency")
        .returning(col(LedgerEntry.id))
    )
    if inserted.first() is None:
        return None
    entry = await session.get(LedgerEntry, entry_id)
    assert entry is not None
    balances = await get_balances(
        session=session, tenant_id=account.tenant_id, customer_ids=[account.customer_id]
    )
    await record_event(
        session,
        PointsCredited(
            customer_id=account.customer_id,
            entry_id=entry.id,
            points=points,
            reason=reason,
            balance=balances[account.customer_id],
        ),
        tenant_id=account.tenant_id,
        subject=str(account.customer_id),
    )
    return entry


async def get_balances(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Balances (sum of entries) of the customers among ``customer_ids`` that have an account."""
    rows = await session.execute(
        select(Account.customer_id, func.coalesce(func.sum(LedgerEntry.points), 0))
        .select_from(Account)
        .outerjoin(LedgerEntry, col(LedgerEntry.account_id) == col(Account.id))
        .where(Account.tenant_id == tenant_id, col(Account.customer_id).in_(customer_ids))
        .group_by(col(Account.customer_id))
    )
    return {customer_id: int(balance) for customer_id, balance in rows.all()}
