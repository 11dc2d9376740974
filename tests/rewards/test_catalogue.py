"""The catalogue: buying items with points through the ledger, within stock and limits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from crm_shared.db import Database
from crm_shared.errors import BadUserInput, Conflict, CrmError, NotFound
from rewards.accounts import service as ledger
from rewards.accounts.models import JournalEntry
from rewards.catalogue import service
from rewards.catalogue.models import CatalogueItem, CatalogueItemData, CatalogueRedemption
from rewards.offers import service as offers
from tests.rewards.conftest import open_customer
from tests.rewards.offer_support import published_offer, set_marketing


async def _customer_with(
    db: Database, points: int, tenant: uuid.UUID | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, customer = await open_customer(db, tenant)
    async with db.session() as session, session.begin():
        await ledger.earn(
            session,
            tenant_id=tenant,
            customer_id=customer,
            points=points,
            reason="purchase",
            idempotency_key=f"event:{uuid.uuid4()}",
            actor="system:test",
        )
    return tenant, customer


async def _item(db: Database, tenant: uuid.UUID, **fields: Any) -> CatalogueItem:
    data = CatalogueItemData.model_validate({"name": "Mug", "points_cost": 40, **fields})
    async with db.session() as session, session.begin():
        return await service.create_item(session=session, tenant_id=tenant, data=data)


async def _redeem(
    db: Database, tenant: uuid.UUID, customer: uuid.UUID, item: uuid.UUID, key: str | None = None
) -> service.Redeemed:
    async with db.session() as session, session.begin():
        return await service.redeem_item(
            session=session,
            tenant_id=tenant,
            customer_id=customer,
            item_id=item,
            idempotency_key=key or str(uuid.uuid4()),
            actor=f"customer:{customer}",
        )


async def _state(
    db: Database, tenant: uuid.UUID, customer: uuid.UUID, item: uuid.UUID
) -> tuple[int, int, int, int]:
    """(balance, item's redeemed, redemptions, spend entries) as the database holds them."""
    async with db.session() as session:
        balance = (
            await ledger.get_balances(session=session, tenant_id=tenant, customer_ids=[customer])
        )[customer]
        redeemed = (await session.get(CatalogueItem, item, populate_existing=True)).redeemed  # type: ignore[union-attr]
        redemptions = (
            await session.execute(
                select(func.count())
                .select_from(CatalogueRedemption)
                .where(col(CatalogueRedemption.tenant_id) == tenant)
            )
        ).scalar_one()
        spends = (
            await session.execute(
                select(func.count())
                .select_from(JournalEntry)
                .where(col(JournalEntry.tenant_id) == tenant, col(JournalEntry.kind) == "spend")
            )
        ).scalar_one()
        assert await ledger.check_ledger(session, tenant) == []
    return balance, redeemed, redemptions, spends


async def test_redeeming_an_item_spends_its_points_and_takes_one_from_stock(
    ledger_db: Database,
) -> None:
    tenant, customer = await _customer_with(ledger_db, 100)
    item = await _item(ledger_db, tenant, stock=3)

    result = await _redeem(ledger_db, tenant, customer, item.id)

    assert result.balance == 60 and not result.replayed
    assert result.redemption.entry_id is not None
    assert await _state(ledger_db, tenant, customer, item.id) == (60, 1, 1, 1)


async def test_a_redemption_sent_twice_with_one_key_spends_once(ledger_db: Database) -> None:
    tenant, customer = await _customer_with(ledger_db, 100)
    item = await _item(ledger_db, tenant)

    first = await _redeem(ledger_db, tenant, customer, item.id, key="k-1")
    again = await _redeem(ledger_db, tenant, customer, item.id, key="k-1")
    other = await _item(ledger_db, tenant, name="Cap")
    with pytest.raises(Conflict) as reused:
        await _redeem(ledger_db, tenant, customer, other.id, key="k-1")

    assert again.replayed and again.redemption.id == first.redemption.id
    assert reused.value.field == "input.idempotencyKey"
    assert await _state(ledger_db, tenant, customer, item.id) == (60, 1, 1, 1)


async def test_a_redemption_that_would_overdraw_fails_and_writes_nothing(
    ledger_db: Database,
) -> None:
    tenant, customer = await _customer_with(ledger_db, 30)
    item = await _item(ledger_db, tenant, stock=5, per_customer_limit=1)

    with pytest.raises(BadUserInput) as refused:
        await _redeem(ledger_db, tenant, customer, item.id)

    assert refused.value.field == "input.itemId"
    assert "insufficient points" in refused.value.message
    assert await _state(ledger_db, tenant, customer, item.id) == (30, 0, 0, 0)


async def test_an_item_out_of_stock_or_outside_its_window_is_refused(ledger_db: Database) -> None:
    tenant, customer = await _customer_with(ledger_db, 500)
    item = await _item(ledger_db, tenant, stock=1)
    await _redeem(ledger_db, tenant, customer, item.id)
    with pytest.raises(Conflict) as gone:
        await _redeem(ledger_db, tenant, customer, item.id)
    later = await _item(ledger_db, tenant, active_from="2099-01-01T00:00:00Z")
    with pytest.raises(BadUserInput) as early:
        await _redeem(ledger_db, tenant, customer, later.id)

    assert "out of stock" in gone.value.message
    assert early.value.field == "input.itemId"
    assert await _state(ledger_db, tenant, customer, item.id) == (460, 1, 1, 1)


async def test_parallel_redemptions_never_exceed_stock_limit_or_balance(
    ledger_db: Database,
) -> None:
    tenant, rich = await _customer_with(ledger_db, 10_000)
    _, poor = await _customer_with(ledger_db, 100, tenant)
    limited = await _item(ledger_db, tenant, stock=1000, per_customer_limit=4)
    scarce = await _item(ledger_db, tenant, stock=7, name="Scarf")

    results = await asyncio.gather(
        *(_redeem(ledger_db, tenant, rich, limited.id) for _ in range(40)),
        *(_redeem(ledger_db, tenant, poor, scarce.id) for _ in range(40)),
        *(_redeem(ledger_db, tenant, rich, scarce.id) for _ in range(40)),
        return_exceptions=True,
    )

    done = [r for r in results if isinstance(r, service.Redeemed)]
    unexpected = [r for r in results if not isinstance(r, service.Redeemed | CrmError)]
    assert unexpected == []
    by_item = {key: sum(1 for r in done if r.item.id == key) for key in (limited.id, scarce.id)}
    poor_done = sum(1 for r in done if r.redemption.customer_id == poor)
    assert by_item[limited.id] == 4
    assert by_item[scarce.id] == 7
    assert poor_done == 2  # 100 points buy two items of 40
    async with ledger_db.session() as session:
        balances = await ledger.get_balances(
            session=session, tenant_id=tenant, customer_ids=[rich, poor]
        )
        assert await ledger.check_ledger(session, tenant) == []
    assert balances[poor] == 20
    assert balances[rich] == 10_000 - 40 * (4 + 7 - poor_done)


async def test_an_update_is_checked_whole_and_keeps_what_was_redeemed(ledger_db: Database) -> None:
    tenant, customer = await _customer_with(ledger_db, 100)
    item = await _item(ledger_db, tenant, stock=5, active_from="2026-01-01T00:00:00Z")
    await _redeem(ledger_db, tenant, customer, item.id)
    await _redeem(ledger_db, tenant, customer, item.id)

    for changes, field in (
        ({"active_to": "2025-01-01T00:00:00Z"}, "input.activeTo"),
        ({"stock": 1}, "input.stock"),
        ({"points_cost": 0}, "input.pointsCost"),
    ):
        with pytest.raises(BadUserInput) as refused:
            async with ledger_db.session() as session, session.begin():
                await service.update_item(
                    session=session, tenant_id=tenant, item_id=item.id, changes=changes
                )
        assert refused.value.field == field
    async with ledger_db.session() as session, session.begin():
        updated = await service.update_item(
            session=session,
            tenant_id=tenant,
            item_id=item.id,
            changes={"stock": 2, "name": "Big mug"},
        )
    assert (updated.stock, updated.name, updated.redeemed, updated.points_cost) == (
        2,
        "Big mug",
        2,
        40,
    )


async def test_an_item_that_is_a_coupon_issues_one_and_honours_consent(
    ledger_db: Database,
) -> None:
    tenant, consenting = await _customer_with(ledger_db, 100)
    _, silent = await _customer_with(ledger_db, 100, tenant)
    await set_marketing(ledger_db, tenant, [consenting])
    offer = await published_offer(ledger_db, tenant, stock=10)
    item = await _item(ledger_db, tenant, name="10 % coupon", offer_id=offer.id)

    bought = await _redeem(ledger_db, tenant, consenting, item.id, key="c-1")
    again = await _redeem(ledger_db, tenant, consenting, item.id, key="c-1")
    with pytest.raises(BadUserInput) as refused:
        await _redeem(ledger_db, tenant, silent, item.id)

    assert bought.coupon is not None and bought.coupon.source == "catalogue"
    assert bought.coupon.customer_id == consenting
    assert again.replayed and again.coupon is not None and again.coupon.id == bought.coupon.id
    assert refused.value.field == "input.itemId"
    assert "consent" in refused.value.message
    async with ledger_db.session() as session:
        balances = await ledger.get_balances(
            session=session, tenant_id=tenant, customer_ids=[consenting, silent]
        )
        current = await offers.get_offer(session=session, tenant_id=tenant, offer_id=offer.id)
    assert balances == {consenting: 60, silent: 100}
    assert current.issued == 1


async def test_an_item_naming_another_tenants_offer_is_refused(ledger_db: Database) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    offer = await published_offer(ledger_db, other)
    with pytest.raises(NotFound) as refused:
        await _item(ledger_db, tenant, offer_id=offer.id)
    assert refused.value.field == "input.offerId"
