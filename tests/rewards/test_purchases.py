"""Purchases and refunds partners report: idempotent by key and by order, validated, and
counted in the customer's value (own purchases net of refunds)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.errors import BadUserInput, Conflict, NotFound
from rewards.purchases import service
from rewards.purchases.models import PurchaseReport, RefundReport
from rewards.value import service as value
from tests.rewards.conftest import open_customer

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def purchase(customer: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """A purchase body as a partner sends it."""
    body: dict[str, Any] = {
        "order_id": f"o-{uuid.uuid4().hex[:8]}",
        "customer_id": str(customer),
        "amount_cents": 4_990,
        "currency": "eur",
        "occurred_at": WHEN.isoformat(),
    }
    return {**body, **overrides}


async def record(
    db: Database, tenant_id: uuid.UUID, body: dict[str, Any], key: str, style: str = "http"
) -> service.Recorded:
    report = service.parse_report(PurchaseReport, body, style=style)
    async with db.session() as session, session.begin():
        return await service.record_purchase(
            session=session,
            tenant_id=tenant_id,
            report=report,
            idempotency_key=service.request_key(key, field="Idempotency-Key"),
            actor="client:test",
        )


async def refund(
    db: Database, tenant_id: uuid.UUID, body: dict[str, Any], key: str
) -> service.Recorded:
    report = service.parse_report(RefundReport, body, style="http")
    async with db.session() as session, session.begin():
        return await service.record_refund(
            session=session,
            tenant_id=tenant_id,
            report=report,
            idempotency_key=service.request_key(key, field="Idempotency-Key"),
            actor="client:test",
        )


async def count(db: Database, table: str, tenant_id: uuid.UUID) -> int:
    async with db.session() as session:
        found = await session.execute(
            text(f"SELECT count(*) FROM rewards.{table} WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return int(found.scalar_one())


async def own_value(db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> int:
    async with db.session() as session:
        found = await value.get_values(
            session=session, tenant_id=tenant_id, customer_ids=[customer_id]
        )
    return found[customer_id].own_revenue_cents if customer_id in found else 0


async def test_the_same_purchase_key_twice_is_one_purchase(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    body = purchase(customer)

    first = await record(ledger_db, tenant, body, "k-1")
    again = await record(ledger_db, tenant, body, "k-1")

    assert (first.replayed, again.replayed) == (False, True)
    assert again.purchase.id == first.purchase.id
    assert first.purchase.currency == "EUR"
    assert await count(ledger_db, "purchases", tenant) == 1
    assert await own_value(ledger_db, tenant, customer) == 4_990


async def test_the_same_key_with_another_body_is_refused(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    await record(ledger_db, tenant, purchase(customer, order_id="o-1"), "k-1")

    with pytest.raises(Conflict) as refused:
        await record(ledger_db, tenant, purchase(customer, order_id="o-1", amount_cents=1), "k-1")

    assert refused.value.field == "Idempotency-Key"
    assert await count(ledger_db, "purchases", tenant) == 1


async def test_an_order_reported_again_under_a_new_key_is_the_same_purchase(
    ledger_db: Database,
) -> None:
    tenant, customer = await open_customer(ledger_db)
    body = purchase(customer)
    first = await record(ledger_db, tenant, body, "k-1")

    again = await record(ledger_db, tenant, body, "k-2")
    with pytest.raises(Conflict) as changed:
        await record(ledger_db, tenant, {**body, "amount_cents": 10}, "k-3")

    assert again.replayed and again.purchase.id == first.purchase.id
    assert changed.value.field == "order_id"
    assert await count(ledger_db, "purchases", tenant) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_cents": 0}, "amount_cents"),
        ({"amount_cents": "ten"}, "amount_cents"),
        ({"currency": "euro"}, "currency"),
        ({"order_id": "  "}, "order_id"),
        ({"kind": "gift"}, "kind"),
        ({"occurred_at": "2026-11-30T12:00:00"}, "occurred_at"),
        ({"occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "occurred_at"),
        ({"customer_id": "nope"}, "customer_id"),
    ],
)
async def test_bad_purchase_input_names_the_field_and_writes_nothing(
    ledger_db: Database, change: dict[str, Any], field: str
) -> None:
    tenant, customer = await open_customer(ledger_db)

    with pytest.raises(BadUserInput) as refused:
        await record(ledger_db, tenant, purchase(customer, **change), "k-1")

    assert refused.value.field == field
    assert await count(ledger_db, "purchases", tenant) == 0
    assert await count(ledger_db, "purchase_requests", tenant) == 0


async def test_graphql_input_errors_are_spelled_as_graphql_fields(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)

    with pytest.raises(BadUserInput) as refused:
        await record(ledger_db, tenant, purchase(customer, amount_cents=-5), "k", style="graphql")

    assert refused.value.field == "input.amountCents"


async def test_a_purchase_of_an_unknown_customer_or_other_currency_is_refused(
    ledger_db: Database,
) -> None:
    tenant, customer = await open_customer(ledger_db)
    await record(ledger_db, tenant, purchase(customer), "k-1")

    with pytest.raises(NotFound) as unknown:
        await record(ledger_db, tenant, purchase(uuid.uuid4()), "k-2")
    with pytest.raises(BadUserInput) as dollars:
        await record(ledger_db, tenant, purchase(customer, currency="USD"), "k-3")
    other_tenant, _ = await open_customer(ledger_db)
    with pytest.raises(NotFound):
        await record(ledger_db, other_tenant, purchase(customer), "k-4")

    assert unknown.value.field == "customer_id"
    assert dollars.value.field == "currency"
    assert await count(ledger_db, "purchases", tenant) == 1


async def test_refunds_are_partial_or_full_and_never_more_than_the_purchase(
    ledger_db: Database,
) -> None:
    tenant, customer = await open_customer(ledger_db)
    body = purchase(customer, amount_cents=10_000)
    await record(ledger_db, tenant, body, "p-1")
    order = {"order_id": body["order_id"], "occurred_at": WHEN.isoformat()}

    partial = await refund(ledger_db, tenant, {**order, "amount_cents": 3_000}, "r-1")
    replay = await refund(ledger_db, tenant, {**order, "amount_cents": 3_000}, "r-1")
    with pytest.raises(BadUserInput) as too_much:
        await refund(ledger_db, tenant, {**order, "amount_cents": 7_001}, "r-2")
    rest = await refund(ledger_db, tenant, order, "r-3")
    with pytest.raises(BadUserInput) as nothing_left:
        await refund(ledger_db, tenant, order, "r-4")
    with pytest.raises(NotFound) as unknown:
        await refund(ledger_db, tenant, {**order, "order_id": "nope"}, "r-5")

    assert partial.refund is not None and replay.refund is not None and rest.refund is not None
    assert replay.replayed and replay.refund.id == partial.refund.id
    assert too_much.value.field == "amount_cents"
    assert rest.refund.amount_cents == 7_000
    assert nothing_left.value.field == "order_id"
    assert unknown.value.field == "order_id"
    assert await count(ledger_db, "refunds", tenant) == 2
    assert await own_value(ledger_db, tenant, customer) == 0


async def test_a_refund_changes_own_value_net(ledger_db: Database) -> None:
    tenant, customer = await open_customer(ledger_db)
    first = purchase(customer, amount_cents=10_000)
    await record(ledger_db, tenant, first, "p-1")
    await record(ledger_db, tenant, purchase(customer, amount_cents=2_500), "p-2")
    await refund(
        ledger_db,
        tenant,
        {"order_id": first["order_id"], "amount_cents": 4_000, "occurred_at": WHEN.isoformat()},
        "r-1",
    )

    assert await own_value(ledger_db, tenant, customer) == 8_500
