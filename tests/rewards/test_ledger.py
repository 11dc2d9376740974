"""The points ledger through its service functions, on real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from rewards.accounts import service
from rewards.accounts.expiry import expire_once
from tests.rewards.conftest import open_customer

ACTOR = "staff:test"


async def _earn(
    db: Database, tenant: uuid.UUID, customer: uuid.UUID, points: int, **kw: Any
) -> service.Movement:
    async with db.session() as session, session.begin():
        return await service.earn(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=points,
            reason=kw.pop("reason", "purchase"),
            idempotency_key=kw.pop("key", f"event:{uuid.uuid4()}"),
            actor=ACTOR,
            **kw,
        )


async def _spend(
    db: Database, tenant: uuid.UUID, customer: uuid.UUID, points: int, **kw: Any
) -> service.Movement:
    async with db.session() as session, session.begin():
        return await service.spend(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=points,
            reason=kw.pop("reason", "coffee"),
            idempotency_key=kw.pop("key", f"request:{uuid.uuid4()}"),
            actor=ACTOR,
            **kw,
        )


async def _reverse(
    db: Database, tenant: uuid.UUID, entry_id: uuid.UUID, **kw: Any
) -> service.Movement:
    async with db.session() as session, session.begin():
        return await service.reverse(
            session,
            tenant_id=tenant,
            entry_id=entry_id,
            reason=kw.pop("reason", "refund"),
            idempotency_key=kw.pop("key", f"request:{uuid.uuid4()}"),
            actor=ACTOR,
            **kw,
        )


async def _check(db: Database, tenant: uuid.UUID) -> None:
    async with db.session() as session:
        assert await service.check_ledger(session, tenant) == []


async def _balance(db: Database, tenant: uuid.UUID, customer: uuid.UUID) -> int:
    async with db.session() as session:
        return (
            await service.get_balances(session=session, tenant_id=tenant, customer_ids=[customer])
        )[customer]


async def _outbox(db: Database, customer: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT type, envelope->'data' FROM rewards.outbox "
                "WHERE envelope->'data'->>'customer_id' = :c ORDER BY created_at, id"
            ),
            {"c": str(customer)},
        )
        return [(t, d) for t, d in rows.all()]


async def test_earn_and_spend_move_points_in_balanced_entries_and_announce_them(
    ledger_db: Database,
) -> None:
    tenant, customer = await open_customer(ledger_db)
    earned = await _earn(ledger_db, tenant, customer, 120)
    spent = await _spend(ledger_db, tenant, customer, 50)

    assert (earned.points, earned.balance_after) == (120, 120)
    assert (spent.points, spent.balance_after) == (-50, 70)
    assert await _balance(ledger_db, tenant, customer) == 70
    async with ledger_db.session() as session:
        postings = await session.execute(
            text(
                "SELECT a.kind, p.amount FROM rewards.postings p "
                "JOIN rewards.accounts a ON a.id = p.account_id "
                "WHERE p.entry_id = :e ORDER BY a.kind"
            ),
            {"e": spent.entry.id},
        )
        assert postings.all() == [("customer", -50), ("redemption", 50)]
    events = await _outbox(ledger_db, customer)
    assert [(t, d["kind"], d["points"], d["balance_after"]) for t, d in events] == [
        ("rewards.points.credited.v1", "earn", 120, 120),
        ("rewards.points.debited.v1", "spend", 50, 70),
    ]
    await _check(ledger_db, tenant)


async def test_the_same_key_and_content_returns_the_first_entry(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    await _earn(ledger_db, tenant, customer, 100)
    first = await _spend(ledger_db, tenant, customer, 30, key="request:k1")
    again = await _spend(ledger_db, tenant, customer, 30, key="request:k1")

    assert again.replayed and not first.replayed
    assert again.entry.id == first.entry.id
    assert await _balance(ledger_db, tenant, customer) == 70
    assert len(await _outbox(ledger_db, customer)) == 2


async def test_the_same_key_with_other_content_is_a_conflict(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    await _earn(ledger_db, tenant, customer, 100)
    await _spend(ledger_db, tenant, customer, 30, key="request:k2")

    with pytest.raises(Conflict) as raised:
        await _spend(ledger_db, tenant, customer, 31, key="request:k2")
    assert raised.value.message == "idempotency key reused with different content"
    assert raised.value.field == "idempotencyKey"
    # Another customer of the tenant cannot reuse it either.
    _, other = await open_customer(ledger_db, tenant)
    await _earn(ledger_db, tenant, other, 100)
    with pytest.raises(Conflict):
        await _spend(ledger_db, tenant, other, 30, key="request:k2")
    assert await _balance(ledger_db, tenant, customer) == 70


async def test_spending_more_than_the_balance_is_refused_and_writes_nothing(
    ledger_db: Database,
) -> None:
    tenant, customer = await open_customer(ledger_db)
    await _earn(ledger_db, tenant, customer, 40)

    with pytest.raises(BadUserInput) as raised:
        await _spend(ledger_db, tenant, customer, 41)
    assert raised.value.field == "points"
    assert "insufficient points" in raised.value.message
    assert await _balance(ledger_db, tenant, customer) == 40
    assert len(await _outbox(ledger_db, customer)) == 1
    await _check(ledger_db, tenant)


@pytest.mark.parametrize(
    "points,reason,key,field",
    [
        (0, "x", "request:a", "points"),
        (-5, "x", "request:a", "points"),
        (5, "  ", "request:a", "reason"),
        (5, "x", " ", "idempotencyKey"),
    ],
)
async def test_bad_input_names_the_field(
    ledger_db: Database, points: int, reason: str, key: str, field: str
) -> None:
    tenant, customer = await open_customer(ledger_db)
    await _earn(ledger_db, tenant, customer, 40)
    with pytest.raises(BadUserInput) as raised:
        await _spend(ledger_db, tenant, customer, points, reason=reason, key=key)
    assert raised.value.field == field


async def test_an_unknown_customer_is_not_found(ledger_db: Database) -> None:
    tenant, _ = await open_customer(ledger_db)
    with pytest.raises(NotFound) as raised:
        await _spend(ledger_db, tenant, uuid.uuid4(), 5)
    assert raised.value.field == "customerId"


async def test_spending_takes_the_lots_that_expire_first(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    now = utcnow()
    await _earn(ledger_db, tenant, customer, 100, ttl_days=300, now=now)
    await _earn(ledger_db, tenant, customer, 50, ttl_days=10, now=now)
    await _spend(ledger_db, tenant, customer, 70, now=now)

    async with ledger_db.session() as session:
        soon = await service.expiring_soon(
            session, tenant_id=tenant, customer_id=customer, within=timedelta(days=400), now=now
        )
    assert soon == [(80, now + timedelta(days=300))]


async def test_expiry_removes_only_what_is_left_once_per_lot(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    start = utcnow()
    await _earn(ledger_db, tenant, customer, 100, ttl_days=30, now=start)
    await _earn(ledger_db, tenant, customer, 60, ttl_days=90, now=start)
    await _spend(ledger_db, tenant, customer, 40, now=start)

    later = start + timedelta(days=31)
    for _ in range(2):
        async with ledger_db.session() as session, session.begin():
            moved = await service.expire_due(session, now=later, tenant_id=tenant)
    assert moved == []  # the second run finds nothing left to expire
    assert await _balance(ledger_db, tenant, customer) == 60
    expired = [d for t, d in await _outbox(ledger_db, customer) if t == "rewards.points.expired.v1"]
    assert [(d["points"], d["balance_after"]) for d in expired] == [(60, 60)]
    # Points past their expiry cannot be spent, even before the scheduler ran.
    with pytest.raises(BadUserInput):
        await _spend(ledger_db, tenant, customer, 1, now=start + timedelta(days=91))
    await _check(ledger_db, tenant)


async def test_an_expiry_cannot_be_reversed(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    start = utcnow()
    await _earn(ledger_db, tenant, customer, 10, ttl_days=1, now=start)
    async with ledger_db.session() as session, session.begin():
        [expiry] = await service.expire_due(
            session, now=start + timedelta(days=2), tenant_id=tenant
        )
    with pytest.raises(BadUserInput) as raised:
        await _reverse(ledger_db, tenant, expiry.entry.id)
    assert raised.value.field == "entryId"
    assert await _balance(ledger_db, tenant, customer) == 0


async def test_reversing_an_untouched_earn_takes_its_points_back_once(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    earned = await _earn(ledger_db, tenant, customer, 80)
    reversal = await _reverse(ledger_db, tenant, earned.entry.id)

    assert (reversal.entry.kind, reversal.entry.reverses_entry_id) == ("reversal", earned.entry.id)
    assert (reversal.points, reversal.balance_after) == (-80, 0)
    with pytest.raises(Conflict) as raised:
        await _reverse(ledger_db, tenant, earned.entry.id)
    assert raised.value.field == "entryId"
    with pytest.raises(BadUserInput):
        await _reverse(ledger_db, tenant, reversal.entry.id)
    await _check(ledger_db, tenant)


async def test_an_earn_whose_points_were_spent_cannot_be_reversed(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    earned = await _earn(ledger_db, tenant, customer, 80)
    await _spend(ledger_db, tenant, customer, 1)
    with pytest.raises(BadUserInput) as raised:
        await _reverse(ledger_db, tenant, earned.entry.id)
    assert raised.value.field == "entryId"
    assert await _balance(ledger_db, tenant, customer) == 79


async def test_reversing_a_spend_returns_points_with_their_old_expiry(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    now = utcnow()
    await _earn(ledger_db, tenant, customer, 30, ttl_days=20, now=now)
    await _earn(ledger_db, tenant, customer, 30, ttl_days=40, now=now)
    spent = await _spend(ledger_db, tenant, customer, 45, now=now)
    refund = await _reverse(ledger_db, tenant, spent.entry.id, now=now)

    assert (refund.points, refund.balance_after) == (45, 60)
    async with ledger_db.session() as session:
        soon = await service.expiring_soon(
            session, tenant_id=tenant, customer_id=customer, within=timedelta(days=50), now=now
        )
    assert soon == [(30, now + timedelta(days=20)), (30, now + timedelta(days=40))]
    await _check(ledger_db, tenant)


async def test_a_negative_adjustment_is_a_debit_and_cannot_overdraw(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    async with ledger_db.session() as session, session.begin():
        up = await service.adjust(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=25,
            reason="goodwill",
            idempotency_key="request:a1",
            actor=ACTOR,
        )
    async with ledger_db.session() as session, session.begin():
        down = await service.adjust(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=-10,
            reason="mistake",
            idempotency_key="request:a2",
            actor=ACTOR,
        )
    assert (up.balance_after, down.balance_after) == (25, 15)
    with pytest.raises(BadUserInput):
        async with ledger_db.session() as session, session.begin():
            await service.adjust(
                session,
                tenant_id=tenant,
                customer_id=customer,
                points=-16,
                reason="mistake",
                idempotency_key="request:a3",
                actor=ACTOR,
            )
    await _check(ledger_db, tenant)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rewards.journal_entries SET reason = 'edited' WHERE id = :e",
        "DELETE FROM rewards.journal_entries WHERE id = :e",
        "UPDATE rewards.postings SET amount = amount * 2 WHERE entry_id = :e",
        "DELETE FROM rewards.postings WHERE entry_id = :e",
    ],
)
async def test_the_ledger_is_append_only(ledger_db: Database, statement: str) -> None:
    tenant, customer = await open_customer(ledger_db)
    earned = await _earn(ledger_db, tenant, customer, 10)
    with pytest.raises(DBAPIError, match="append-only"):
        async with ledger_db.session() as session, session.begin():
            await session.execute(text(statement), {"e": earned.entry.id})


async def test_an_entry_that_does_not_balance_cannot_be_committed(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    earned = await _earn(ledger_db, tenant, customer, 10)
    with pytest.raises(DBAPIError, match="does not balance"):
        async with ledger_db.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO rewards.postings (entry_id, account_id, amount) "
                    "SELECT :e, account_id, 5 FROM rewards.postings WHERE entry_id = :e LIMIT 1"
                ),
                {"e": earned.entry.id},
            )
    await _check(ledger_db, tenant)


async def test_the_scheduler_expires_lots_whose_date_has_passed(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    long_ago = utcnow() - timedelta(days=400)
    await _earn(ledger_db, tenant, customer, 100, ttl_days=365, now=long_ago)
    await _earn(ledger_db, tenant, customer, 5, ttl_days=365)

    assert await expire_once(ledger_db) >= 1
    assert await _balance(ledger_db, tenant, customer) == 5
    await _check(ledger_db, tenant)


async def test_an_account_loaded_in_the_session_shows_the_balance_after_each_movement(
    ledger_db: Database,
) -> None:
    tenant, customer = uuid.uuid4(), uuid.uuid4()
    async with ledger_db.session() as session, session.begin():
        account = await service.open_account(
            session=session, tenant_id=tenant, customer_id=customer
        )
        common: dict[str, Any] = {"tenant_id": tenant, "customer_id": customer, "actor": ACTOR}
        await service.earn(session, points=40, reason="purchase", idempotency_key="e", **common)
        assert account.balance == 40
        await service.spend(session, points=15, reason="coffee", idempotency_key="s", **common)
        assert account.balance == 25
        assert not session.dirty  # nothing left to write again
    assert await _balance(ledger_db, tenant, customer) == 25
