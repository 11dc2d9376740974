"""Rewards' ledger tests: the service functions against real PostgreSQL (the isolated stack)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from crm_shared import devstack
from crm_shared.db import Database
from rewards.accounts import service
from rewards.settings import RewardsSettings


def ledger_settings(stack: devstack.Stack, pool_size: int = 5) -> RewardsSettings:
    """Rewards' settings against ``stack``'s database, as rewards' role."""
    return RewardsSettings(database_url=stack.database_url("rewards"), db_pool_size=pool_size)


@pytest.fixture
async def ledger_db(isolated: devstack.Stack) -> AsyncIterator[Database]:
    """Rewards' database with a pool big enough for many concurrent sessions."""
    db = Database(ledger_settings(isolated, pool_size=20))
    yield db
    await db.dispose()


async def open_customer(
    db: Database, tenant_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """A new customer account in ``tenant_id`` (a new tenant by default): (tenant, customer)."""
    tenant = tenant_id or uuid.uuid4()
    customer = uuid.uuid4()
    async with db.session() as session, session.begin():
        await service.open_account(session=session, tenant_id=tenant, customer_id=customer)
    return tenant, customer
