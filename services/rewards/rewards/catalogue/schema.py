"""The catalogue in the rewards subgraph: items to buy with points, and buying one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from crm_shared import audit
from crm_shared.auth import Permission
from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import Connection, check_first, connection, decode_cursor, encode_cursor
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id, validated
from rewards.catalogue import service
from rewards.catalogue.models import CatalogueItem, CatalogueItemData
from rewards.offers.schema import CouponType

_ITEM_FIELDS = tuple(CatalogueItemData.model_fields)


@strawberry.type(name="CatalogueItem")
class CatalogueItemType:
    """A reward customers can buy with points."""

    id: strawberry.ID
    name: str
    description: str
    points_cost: int
    stock: int | None = strawberry.field(description="How many there are in all; null: no limit.")
    redeemed: int
    per_customer_limit: int | None
    offer_id: strawberry.ID | None = strawberry.field(
        description="Set when the item is a coupon: redeeming it issues one of this offer."
    )
    active: bool
    active_from: datetime | None
    active_to: datetime | None
    available: bool = strawberry.field(description="Whether it can be redeemed right now.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, item: CatalogueItem, now: datetime | None = None) -> CatalogueItemType:
        return cls(
            id=strawberry.ID(str(item.id)),
            name=item.name,
            description=item.description,
            points_cost=item.points_cost,
            stock=item.stock,
            redeemed=item.redeemed,
            per_customer_limit=item.per_customer_limit,
            offer_id=strawberry.ID(str(item.offer_id)) if item.offer_id else None,
            active=item.active,
            active_from=item.active_from,
            active_to=item.active_to,
            available=item.available(now or utcnow()),
            created_at=item.created_at,
            updated_at=item.updated_at,
        )


@strawberry.type
class CatalogueRedemption:
    """What redeeming an item did; a replay (same key) returns the first redemption."""

    id: strawberry.ID
    item: CatalogueItemType
    customer_id: strawberry.ID
    points: int
    entry_id: strawberry.ID | None = strawberry.field(description="The ledger's spend entry.")
    coupon: CouponType | None = strawberry.field(
        description="The coupon issued, when the item is a coupon."
    )
    balance: int = strawberry.field(description="The customer's balance after it.")
    replayed: bool
    created_at: datetime

    @classmethod
    def from_result(cls, result: service.Redeemed) -> CatalogueRedemption:
        redemption = result.redemption
        return cls(
            id=strawberry.ID(str(redemption.id)),
            item=CatalogueItemType.from_model(result.item),
            customer_id=strawberry.ID(str(redemption.customer_id)),
            points=redemption.points,
            entry_id=strawberry.ID(str(redemption.entry_id)) if redemption.entry_id else None,
            coupon=CouponType.from_model(result.coupon) if result.coupon else None,
            balance=result.balance,
            replayed=result.replayed,
            created_at=redemption.created_at,
        )


@strawberry.type
class Query:
    @strawberry.field(
        description="The catalogue, oldest first (rewards:read; a customer token sees only what "
        "it can redeem now).",
        extensions=[needs(Permission.REWARDS_READ, own=True)],
    )
    async def catalogue(
        self,
        info: CrmInfo,
        first: int = 20,
        after: str | None = None,
        available_only: bool = False,
    ) -> Connection[CatalogueItemType]:
        principal = info.context.principal
        limit = check_first(first)
        now = utcnow()
        async with info.context.session() as session:
            rows = await service.list_items(
                session=session,
                tenant_id=principal.tenant_id,
                available_only=available_only or principal.kind == "customer",
                limit=limit + 1,
                position=decode_cursor(after) if after else None,
                now=now,
            )
        return connection(
            rows,
            limit,
            cursor=lambda i: encode_cursor(i.created_at, i.id),
            node=lambda i: CatalogueItemType.from_model(i, now),
        )


@strawberry.input
class CreateCatalogueItemInput:
    name: str
    description: str = ""
    points_cost: int
    stock: int | None = strawberry.field(default=None, description="Null: no limit.")
    per_customer_limit: int | None = strawberry.field(default=None, description="Null: no limit.")
    offer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Makes the item a coupon of this offer."
    )
    active: bool = True
    active_from: datetime | None = None
    active_to: datetime | None = None


@strawberry.input
class UpdateCatalogueItemInput:
    """Fields left out stay as they are; an explicit null clears an optional one."""

    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    points_cost: int | None = strawberry.UNSET
    stock: int | None = strawberry.UNSET
    per_customer_limit: int | None = strawberry.UNSET
    offer_id: strawberry.ID | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    active_from: datetime | None = strawberry.UNSET
    active_to: datetime | None = strawberry.UNSET


@strawberry.input
class RedeemCatalogueItemInput:
    item_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="The caller's key for this redemption: sending it again never spends twice."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the customer of a customer token."
    )


def _given(input: object) -> dict[str, Any]:
    return {
        name: getattr(input, name)
        for name in _ITEM_FIELDS
        if getattr(input, name, strawberry.UNSET) is not strawberry.UNSET
    }


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="A new catalogue item (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def create_catalogue_item(
        self, info: CrmInfo, input: CreateCatalogueItemInput
    ) -> CatalogueItemType:
        principal = info.context.principal
        data = validated(CatalogueItemData, _given(input))
        async with info.context.transaction() as session:
            item = await service.create_item(
                session=session, tenant_id=principal.tenant_id, data=data
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="catalogue_item.created",
                record_type="catalogue_item",
                record_id=item.id,
                details={"points_cost": item.points_cost, "stock": item.stock},
            )
        return CatalogueItemType.from_model(item)

    @strawberry.mutation(
        description="Change a catalogue item (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def update_catalogue_item(
        self, info: CrmInfo, input: UpdateCatalogueItemInput
    ) -> CatalogueItemType:
        principal = info.context.principal
        item_id = parse_id(input.id, field="input.id")
        changes = _given(input)
        async with info.context.transaction() as session:
            item = await service.update_item(
                session=session, tenant_id=principal.tenant_id, item_id=item_id, changes=changes
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="catalogue_item.updated",
                record_type="catalogue_item",
                record_id=item.id,
                details={"changed": sorted(changes)},
            )
        return CatalogueItemType.from_model(item)

    @strawberry.mutation(
        description="Buy a catalogue item with the customer's points (rewards:redeem; a "
        "customer token only for itself).",
        extensions=[needs(Permission.REWARDS_REDEEM, customer="input.customer_id", own=True)],
    )
    async def redeem_catalogue_item(
        self, info: CrmInfo, input: RedeemCatalogueItemInput
    ) -> CatalogueRedemption:
        principal = info.context.principal
        customer_id = (
            parse_id(input.customer_id, field="input.customerId")
            if input.customer_id
            else principal.customer_id
        )
        if customer_id is None:
            raise BadUserInput(
                "input.customerId: required unless the token is a customer's",
                field="input.customerId",
            )
        item_id = parse_id(input.item_id, field="input.itemId")
        async with info.context.transaction() as session:
            result = await service.redeem_item(
                session=session,
                tenant_id=principal.tenant_id,
                customer_id=customer_id,
                item_id=item_id,
                idempotency_key=input.idempotency_key,
                actor=principal.actor,
            )
        return CatalogueRedemption.from_result(result)
