"""A movement that waits for another one's lock on the account sees what that one committed.

Each case holds a first movement's transaction open, starts a second movement on the same
account, waits until PostgreSQL shows it blocked on the first one's row lock, then commits
the first: the second must behave as if it had started after the first committed (a retry
replays, points that came back already expired are not spent).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput
from rewards.accounts import service
from tests.rewards.conftest import open_customer

T = TypeVar("T")
ACTOR = "staff:test"


async def _in_transaction(db: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with db.session() as session, session.begin():
        return await work(session)


async def _second_waits_for_first(
    db: Database,
    first: Callable[[AsyncSession], Awaitable[object]],
    second: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """Run ``second`` while ``first``'s transaction is open and holds the account's lock;
    commit ``first`` once ``second`` waits for it; ``second``'s result."""
    async with db.session() as session, session.begin():
        await first(session)
        holder = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        waiting = asyncio.create_task(_in_transaction(db, second))
        async with db.session() as watcher:
            for _ in range(500):
                blocked = (
                    await watcher.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE CAST(:holder AS int) = ANY(pg_blocking_pids(pid))"
                        ),
                        {"holder": holder},
                    )
                ).scalar_one()
                if blocked or waiting.done():
                    break
                await asyncio.sleep(0.01)
        assert not waiting.done(), "the second movement did not wait for the first one's lock"
    return await waiting


async def test_a_retry_waiting_for_its_original_replays_it(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    await _in_transaction(
        ledger_db,
        lambda s: service.earn(
            s,
            tenant_id=tenant,
            customer_id=customer,
            points=10,
            reason="purchase",
            idempotency_key=f"event:{uuid.uuid4()}",
            actor=ACTOR,
        ),
    )
    originals: list[service.Movement] = []

    async def spend_all(session: AsyncSession) -> service.Movement:
        return await service.spend(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=10,
            reason="coffee",
            idempotency_key="request:all",
            actor=ACTOR,
        )

    async def first(session: AsyncSession) -> None:
        originals.append(await spend_all(session))

    # The retry finds the balance spent by its original: it replays, it is not refused.
    retry = await _second_waits_for_first(ledger_db, first, spend_all)
    assert retry.replayed and not originals[0].replayed
    assert (retry.entry.id, retry.points, retry.balance_after) == (originals[0].entry.id, -10, 0)


async def test_an_earn_retry_waiting_for_its_original_replays_it(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    originals: list[service.Movement] = []

    async def earn(session: AsyncSession) -> service.Movement:
        return await service.earn(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=10,
            reason="purchase",
            idempotency_key="event:once",
            actor=ACTOR,
        )

    async def first(session: AsyncSession) -> None:
        originals.append(await earn(session))

    retry = await _second_waits_for_first(ledger_db, first, earn)
    assert retry.replayed and retry.entry.id == originals[0].entry.id
    assert retry.balance_after == 10
    async with ledger_db.session() as session:
        assert await service.get_balances(
            session=session, tenant_id=tenant, customer_ids=[customer]
        ) == {customer: 10}


@pytest.mark.parametrize("points", [3, 6])
async def test_points_refunded_past_their_expiry_while_a_spend_waits_are_not_spent(
    ledger_db: Database, points: int
) -> None:
    """A refund gives back points whose lot has expired meanwhile; a spend that waited for
    the refund expires them first: it takes from the other lot, or is refused."""
    tenant, customer = await open_customer(ledger_db)
    start = utcnow()
    later = start + timedelta(days=2)

    async def earn(session: AsyncSession, points: int, ttl_days: int) -> service.Movement:
        return await service.earn(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=points,
            reason="purchase",
            idempotency_key=f"event:{uuid.uuid4()}",
            actor=ACTOR,
            ttl_days=ttl_days,
            now=start,
        )

    await _in_transaction(ledger_db, lambda s: earn(s, 10, 1))
    spent = await _in_transaction(
        ledger_db,
        lambda s: service.spend(
            s,
            tenant_id=tenant,
            customer_id=customer,
            points=10,
            reason="coffee",
            idempotency_key=f"request:{uuid.uuid4()}",
            actor=ACTOR,
            now=start,
        ),
    )
    await _in_transaction(ledger_db, lambda s: earn(s, 5, 365))

    async def refund(session: AsyncSession) -> None:
        await service.reverse(
            session,
            tenant_id=tenant,
            entry_id=spent.entry.id,
            reason="refund",
            idempotency_key=f"request:{uuid.uuid4()}",
            actor=ACTOR,
            now=later,
        )

    async def spend(session: AsyncSession) -> service.Movement:
        return await service.spend(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=points,
            reason="cake",
            idempotency_key=f"request:{uuid.uuid4()}",
            actor=ACTOR,
            now=later,
        )

    if points > 5:
        with pytest.raises(BadUserInput, match="insufficient points: the balance is 5"):
            await _second_waits_for_first(ledger_db, refund, spend)
        expected_balance, expired = 15, 0  # the refused spend's expiry rolled back with it
    else:
        moved = await _second_waits_for_first(ledger_db, refund, spend)
        assert moved.balance_after == 5 - points
        expected_balance, expired = 5 - points, 1
    async with ledger_db.session() as session:
        assert await service.get_balances(
            session=session, tenant_id=tenant, customer_ids=[customer]
        ) == {customer: expected_balance}
        expiries = (
            await session.execute(
                text(
                    "SELECT count(*) FROM rewards.journal_entries "
                    "WHERE tenant_id = :t AND kind = 'expire'"
                ),
                {"t": tenant},
            )
        ).scalar_one()
        assert expiries == expired
        assert await service.check_ledger(session, tenant) == []
