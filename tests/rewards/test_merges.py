"""Rewards follows identity's merges: points move with their expiry, and back on unmerge."""

from __future__ import annotations

import uuid
from datetime import timedelta

from crm_shared.db import Database, utcnow
from crm_shared.events import Envelope, Event
from crm_shared.privacy import CustomerMerged, CustomerUnmerged
from rewards.accounts import service
from rewards.accounts.merges import move_points_back, move_points_to_survivor
from tests.rewards.conftest import open_customer
from tests.rewards.test_ledger import _balance, _check, _earn, _outbox, _spend


def _envelope(event: Event, tenant: uuid.UUID) -> Envelope:
    return Envelope.wrap(event, source="identity", tenant_id=tenant, subject=None, trace_headers={})


async def _merge(db: Database, tenant: uuid.UUID, event: CustomerMerged) -> None:
    async with db.session() as session, session.begin():
        await move_points_to_survivor(event, envelope=_envelope(event, tenant), session=session)


async def _unmerge(db: Database, tenant: uuid.UUID, event: CustomerUnmerged) -> None:
    async with db.session() as session, session.begin():
        await move_points_back(event, envelope=_envelope(event, tenant), session=session)


async def _lots(db: Database, tenant: uuid.UUID, customer: uuid.UUID) -> list[tuple[int, int]]:
    """The customer's open lots as (remaining points, days until expiry), soonest first."""
    async with db.session() as session:
        rows = await service.expiring_soon(
            session, tenant_id=tenant, customer_id=customer, within=timedelta(days=10_000)
        )
    now = utcnow()
    return [(points, round((expires - now) / timedelta(days=1))) for points, expires in rows]


async def test_a_merge_moves_the_merged_customers_lots_with_their_expiry_once(
    ledger_db: Database,
) -> None:
    tenant, survivor = await open_customer(ledger_db)
    _, merged = await open_customer(ledger_db, tenant)
    await _earn(ledger_db, tenant, survivor, 100, ttl_days=300)
    await _earn(ledger_db, tenant, merged, 40, ttl_days=10)
    await _spend(ledger_db, tenant, merged, 15)
    event = CustomerMerged(merge_id=uuid.uuid4(), survivor_id=survivor, merged_id=merged)

    await _merge(ledger_db, tenant, event)
    await _merge(ledger_db, tenant, event)  # a redelivery moves nothing more

    assert await _balance(ledger_db, tenant, survivor) == 125
    assert await _balance(ledger_db, tenant, merged) == 0
    assert await _lots(ledger_db, tenant, survivor) == [(25, 10), (100, 300)]
    assert (await _outbox(ledger_db, merged))[-1][0] == "rewards.points.debited.v1"
    survivor_events = await _outbox(ledger_db, survivor)
    assert [(t, d["kind"], d["points"]) for t, d in survivor_events][-1] == (
        "rewards.points.credited.v1",
        "transfer",
        25,
    )
    # Both customers see the transfer once in their history, with its sign.
    async with ledger_db.session() as session:
        for customer, points in ((survivor, 25), (merged, -25)):
            rows = await service.history(session, tenant_id=tenant, customer_id=customer, limit=10)
            assert [(e.kind, p) for e, p in rows if e.kind == "transfer"] == [("transfer", points)]
    await _check(ledger_db, tenant)


async def test_an_unmerge_returns_what_is_left_of_the_moved_lots(ledger_db: Database) -> None:
    tenant, survivor = await open_customer(ledger_db)
    _, merged = await open_customer(ledger_db, tenant)
    await _earn(ledger_db, tenant, survivor, 100, ttl_days=300)
    await _earn(ledger_db, tenant, merged, 50, ttl_days=10)
    merge_id = uuid.uuid4()
    await _merge(
        ledger_db, tenant, CustomerMerged(merge_id=merge_id, survivor_id=survivor, merged_id=merged)
    )
    # The survivor spends from the lots expiring first: 30 of the 50 moved over.
    await _spend(ledger_db, tenant, survivor, 30)
    await _earn(ledger_db, tenant, survivor, 7, ttl_days=5)  # earned after the merge: stays
    undo = CustomerUnmerged(merge_id=merge_id, survivor_id=survivor, restored_id=merged)

    await _unmerge(ledger_db, tenant, undo)
    await _unmerge(ledger_db, tenant, undo)

    assert await _balance(ledger_db, tenant, merged) == 20
    assert await _lots(ledger_db, tenant, merged) == [(20, 10)]
    assert await _balance(ledger_db, tenant, survivor) == 107
    await _check(ledger_db, tenant)


async def test_merging_a_customer_without_points_writes_nothing(ledger_db: Database) -> None:
    tenant, survivor = await open_customer(ledger_db)
    await _earn(ledger_db, tenant, survivor, 10)
    never_seen = uuid.uuid4()
    merge_id = uuid.uuid4()

    await _merge(
        ledger_db,
        tenant,
        CustomerMerged(merge_id=merge_id, survivor_id=survivor, merged_id=never_seen),
    )
    await _unmerge(
        ledger_db,
        tenant,
        CustomerUnmerged(merge_id=merge_id, survivor_id=survivor, restored_id=never_seen),
    )

    assert await _balance(ledger_db, tenant, survivor) == 10
    async with ledger_db.session() as session:
        assert (
            await service.entry_by_key(
                session, tenant_id=tenant, idempotency_key=f"merge:{merge_id}"
            )
            is None
        )
    await _check(ledger_db, tenant)
