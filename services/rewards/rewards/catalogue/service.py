"""The catalogue: items bought with points, within stock and per-customer limits.

A redemption is one transaction in this order: claim the caller's idempotency key (a unique
row; a concurrent retry with the same key waits for it), count it against the customer's
limit (a conditional upsert), then against the item's stock (a conditional ``UPDATE ... SET
redeemed = redeemed + 1 WHERE redeemed < stock``, which also locks the item until commit), then
spend the points through the ledger (``rewards.accounts.service.spend``, keyed
``catalogue:<key>``). Any refusal, the ledger's "insufficient points" included, raises and
the caller's transaction rolls everything back: nothing is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, CrmError, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from crm_shared.validation import validated
from rewards.accounts import service as ledger
from rewards.accounts.checks import MAX_REASON_LENGTH
from rewards.catalogue.events import CatalogueItemRedeemed
from rewards.catalogue.models import (
    CatalogueClaim,
    CatalogueItem,
    CatalogueItemData,
    CatalogueRedemption,
)
from rewards.offers import service as offers
from rewards.offers.models import Coupon

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Redeemed:
    """A redemption, the item and the customer's balance after it (``replayed``: the key had
    been used for this same redemption; nothing new happened)."""

    redemption: CatalogueRedemption
    item: CatalogueItem
    balance: int
    replayed: bool = False
    coupon: Coupon | None = None


async def _check_offer(
    session: AsyncSession, tenant_id: uuid.UUID, data: CatalogueItemData
) -> None:
    if data.offer_id is None:
        return
    try:
        await offers.get_offer(session=session, tenant_id=tenant_id, offer_id=data.offer_id)
    except NotFound:
        raise NotFound("input.offerId: no such offer", field="input.offerId") from None


async def create_item(
    *, session: AsyncSession, tenant_id: uuid.UUID, data: CatalogueItemData
) -> CatalogueItem:
    """A new catalogue item (a coupon of ``offer_id``, if given)."""
    await _check_offer(session, tenant_id, data)
    now = utcnow()
    item = CatalogueItem(tenant_id=tenant_id, created_at=now, updated_at=now, **data.model_dump())
    session.add(item)
    await session.flush()
    return item


async def get_item(
    *, session: AsyncSession, tenant_id: uuid.UUID, item_id: uuid.UUID, field: str = "id"
) -> CatalogueItem:
    """The tenant's item; NOT_FOUND on ``field`` otherwise."""
    item = (
        await session.exec(
            select(CatalogueItem)
            .where(CatalogueItem.tenant_id == tenant_id, CatalogueItem.id == item_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if item is None:
        raise NotFound(f"{field}: no such catalogue item", field=field)
    return item


async def update_item(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    item_id: uuid.UUID,
    changes: dict[str, Any],
) -> CatalogueItem:
    """Change some of an item's fields (the result is validated whole); the stock cannot go
    below what was already redeemed."""
    item = (
        await session.exec(
            select(CatalogueItem)
            .where(CatalogueItem.tenant_id == tenant_id, CatalogueItem.id == item_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if item is None:
        raise NotFound("input.id: no such catalogue item", field="input.id")
    current = {name: getattr(item, name) for name in CatalogueItemData.model_fields}
    data = validated(CatalogueItemData, {**current, **changes})
    await _check_offer(session, tenant_id, data)
    if data.stock is not None and data.stock < item.redeemed:
        raise BadUserInput(
            f"input.stock: {item.redeemed} were already redeemed", field="input.stock"
        )
    for name, value in data.model_dump().items():
        setattr(item, name, value)
    item.updated_at = utcnow()
    session.add(item)
    await session.flush()
    return item


async def list_items(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    available_only: bool,
    limit: int,
    position: tuple[datetime, uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[CatalogueItem]:
    """The tenant's items, oldest first (only those one can redeem now, if asked)."""
    now = now or utcnow()
    query = select(CatalogueItem).where(CatalogueItem.tenant_id == tenant_id)
    if available_only:
        query = query.where(
            col(CatalogueItem.active),
            or_(col(CatalogueItem.active_from).is_(None), col(CatalogueItem.active_from) <= now),
            or_(col(CatalogueItem.active_to).is_(None), col(CatalogueItem.active_to) > now),
            or_(
                col(CatalogueItem.stock).is_(None),
                col(CatalogueItem.redeemed) < col(CatalogueItem.stock),
            ),
        )
    page = keyset_page(
        query, col(CatalogueItem.created_at), col(CatalogueItem.id), position, limit=limit
    )
    return list((await session.exec(page)).all())


def _check_key(key: str) -> str:
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise BadUserInput(
            f"input.idempotencyKey: 1 to {MAX_KEY_LENGTH} characters",
            field="input.idempotencyKey",
        )
    return key


async def _replay(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    key: str,
    item: CatalogueItem,
    customer_id: uuid.UUID,
) -> Redeemed:
    first = (
        await session.exec(
            select(CatalogueRedemption).where(
                CatalogueRedemption.tenant_id == tenant_id,
                CatalogueRedemption.idempotency_key == key,
            )
        )
    ).one()
    if first.item_id != item.id or first.customer_id != customer_id:
        raise Conflict(
            "input.idempotencyKey: reused for another redemption", field="input.idempotencyKey"
        )
    balances = await ledger.get_balances(
        session=session, tenant_id=tenant_id, customer_ids=[customer_id]
    )
    coupon = await session.get(Coupon, first.coupon_id) if first.coupon_id else None
    return Redeemed(
        redemption=first,
        item=item,
        balance=balances.get(customer_id, 0),
        replayed=True,
        coupon=coupon,
    )


async def redeem_item(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    item_id: uuid.UUID,
    idempotency_key: str,
    actor: str,
    now: datetime | None = None,
) -> Redeemed:
    """Buy an item with the customer's points, once per key (see the module's docstring)."""
    now = now or utcnow()
    key = _check_key(idempotency_key)
    item = await get_item(
        session=session, tenant_id=tenant_id, item_id=item_id, field="input.itemId"
    )
    redemption = CatalogueRedemption(
        tenant_id=tenant_id,
        item_id=item.id,
        customer_id=customer_id,
        idempotency_key=key,
        points=item.points_cost,
        created_at=now,
    )
    claimed = await session.execute(
        insert(CatalogueRedemption)
        .values(redemption.model_dump())
        .on_conflict_do_nothing(constraint="catalogue_redemptions_idempotency")
        .returning(col(CatalogueRedemption.id))
    )
    if claimed.first() is None:
        return await _replay(session, tenant_id, key, item, customer_id)
    if not item.on_offer(now):
        raise BadUserInput("input.itemId: this item cannot be redeemed now", field="input.itemId")
    if item.per_customer_limit is not None:
        claims = CatalogueClaim.__table__  # type: ignore[attr-defined]
        counted = await session.execute(
            insert(CatalogueClaim)
            .values(item_id=item.id, customer_id=customer_id, tenant_id=tenant_id, count=1)
            .on_conflict_do_update(
                index_elements=["item_id", "customer_id"],
                set_={"count": claims.c.count + 1},
                where=claims.c.count + 1 <= item.per_customer_limit,
            )
            .returning(claims.c.count)
        )
        if counted.first() is None:
            raise Conflict(
                f"input.itemId: at most {item.per_customer_limit} per customer",
                field="input.itemId",
            )
    taken = await session.execute(
        update(CatalogueItem)
        .where(
            col(CatalogueItem.tenant_id) == tenant_id,
            col(CatalogueItem.id) == item.id,
            col(CatalogueItem.active),
            or_(
                col(CatalogueItem.stock).is_(None),
                col(CatalogueItem.redeemed) < col(CatalogueItem.stock),
            ),
        )
        .values(redeemed=col(CatalogueItem.redeemed) + 1)
        .returning(col(CatalogueItem.redeemed), col(CatalogueItem.points_cost))
        .execution_options(synchronize_session=False)
    )
    row = taken.first()
    if row is None:
        raise Conflict("input.itemId: this item is out of stock", field="input.itemId")
    item.redeemed, cost = int(row[0]), int(row[1])
    try:
        movement = await ledger.spend(
            session,
            tenant_id=tenant_id,
            customer_id=customer_id,
            points=cost,
            reason=f"catalogue: {item.name}"[:MAX_REASON_LENGTH],
            idempotency_key=f"catalogue:{key}",
            actor=actor,
            now=now,
        )
    except BadUserInput as refused:
        raise BadUserInput(refused.message, field="input.itemId") from None
    except NotFound:
        raise NotFound(
            "input.customerId: this customer has no rewards account", field="input.customerId"
        ) from None
    coupon: Coupon | None = None
    if item.offer_id is not None:
        try:
            coupon = await offers.issue_bought_coupon(
                session=session,
                tenant_id=tenant_id,
                offer_id=item.offer_id,
                customer_id=customer_id,
                now=now,
            )
        except CrmError as refused:
            # The offer's own field names mean nothing to this mutation's caller.
            raise type(refused)(refused.message, field="input.itemId") from None
        redemption.coupon_id = coupon.id
    redemption.entry_id = movement.entry.id
    redemption.points = cost
    await session.execute(
        update(CatalogueRedemption)
        .where(col(CatalogueRedemption.id) == redemption.id)
        .values(entry_id=movement.entry.id, points=cost, coupon_id=redemption.coupon_id)
        .execution_options(synchronize_session=False)
    )
    await record_event(
        session,
        CatalogueItemRedeemed(
            redemption_id=redemption.id,
            item_id=item.id,
            customer_id=customer_id,
            points=cost,
            entry_id=movement.entry.id,
            coupon_id=redemption.coupon_id,
        ),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )
    return Redeemed(redemption=redemption, item=item, balance=movement.balance_after, coupon=coupon)
