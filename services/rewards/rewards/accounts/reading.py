"""Reading the points ledger back: balances, points expiring soon, a customer's history, and
the consistency check of a tenant's ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, text, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from rewards.accounts.models import Account, AccountKind, JournalEntry, Lot, Posting


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
