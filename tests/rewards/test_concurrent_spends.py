"""Many spends at once against one balance: it is never overdrawn."""

from __future__ import annotations

import asyncio
import uuid

from crm_shared.db import Database
from crm_shared.errors import BadUserInput
from rewards.accounts import service
from tests.rewards.conftest import open_customer

SPENDS = 200
AMOUNT = 7
BALANCE = 1_000


async def test_two_hundred_concurrent_spends_never_overdraw(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    async with ledger_db.session() as session, session.begin():
        await service.earn(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=BALANCE,
            reason="purchase",
            idempotency_key=f"event:{uuid.uuid4()}",
            actor="system:test",
        )

    async def spend(n: int) -> service.Movement:
        # Each spend has its own session, so its own connection and transaction.
        async with ledger_db.session() as session, session.begin():
            return await service.spend(
                session,
                tenant_id=tenant,
                customer_id=customer,
                points=AMOUNT,
                reason="coffee",
                idempotency_key=f"request:spend-{n}",
                actor="customer:test",
            )

    results = await asyncio.gather(*(spend(n) for n in range(SPENDS)), return_exceptions=True)

    succeeded = [r for r in results if isinstance(r, service.Movement)]
    refused = [r for r in results if isinstance(r, BadUserInput)]
    assert len(succeeded) + len(refused) == SPENDS, [
        r for r in results if not isinstance(r, service.Movement | BadUserInput)
    ]
    assert len(succeeded) == BALANCE // AMOUNT
    assert all(r.field == "points" for r in refused)
    # Each success saw its own balance: one after another, down to what is left.
    assert sorted(m.balance_after for m in succeeded) == [
        BALANCE - AMOUNT * k for k in range(len(succeeded), 0, -1)
    ]
    async with ledger_db.session() as session:
        balances = await service.get_balances(
            session=session, tenant_id=tenant, customer_ids=[customer]
        )
        assert balances[customer] == BALANCE % AMOUNT
        assert await service.check_ledger(session, tenant) == []
