"""Purchases in the graph: ``Customer.purchases`` and the partner mutations (same service
functions as ``POST /purchases`` and ``POST /refunds``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import Connection, encode_cursor
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id
from rewards.purchases import service
from rewards.purchases.models import Purchase, PurchaseKind, PurchaseReport, RefundReport
from rewards.settings import RewardsSettings

strawberry.enum(PurchaseKind, name="PurchaseKind")


def _settings(info: CrmInfo) -> RewardsSettings:
    found = getattr(info.context.request.app.state, "settings", None)
    return found if isinstance(found, RewardsSettings) else RewardsSettings()


@strawberry.type(name="Purchase")
class PurchaseType:
    """A purchase a partner reported; amounts in cents."""

    id: strawberry.ID
    order_id: str
    amount_cents: int
    refunded_cents: int
    currency: str
    kind: PurchaseKind
    occurred_at: datetime

    @classmethod
    def from_model(cls, row: Purchase) -> PurchaseType:
        return cls(
            id=strawberry.ID(str(row.id)),
            order_id=row.order_id,
            amount_cents=row.amount_cents,
            refunded_cents=row.refunded_cents,
            currency=row.currency,
            kind=PurchaseKind(row.kind),
            occurred_at=row.occurred_at,
        )


@strawberry.type
class PurchaseRecord:
    """What ``recordPurchase`` did; a replay (same key, same input) returns the first result."""

    purchase: PurchaseType
    replayed: bool


@strawberry.type
class RefundRecord:
    """What ``recordRefund`` did."""

    refund_id: strawberry.ID
    amount_cents: int
    purchase: PurchaseType
    replayed: bool


@strawberry.type
class PurchasesCustomerFields:
    """Rewards' purchase fields of ``Customer``."""

    id: strawberry.ID

    @strawberry.field(
        description="Purchases partners reported, most recent first (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def purchases(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[PurchaseType]:
        customer_id = parse_id(self.id, field="id")
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.purchases_of(
                session=session,
                tenant_id=tenant_id,
                customer_id=customer_id,
                limit=limit,
                after=position,
            ),
            cursor=lambda r: encode_cursor(r.occurred_at, r.id),
            node=PurchaseType.from_model,
        )


@strawberry.input
class RecordPurchaseInput:
    order_id: str = strawberry.field(description="The partner's order id (once per tenant).")
    customer_id: strawberry.ID
    amount_cents: int = strawberry.field(description="In cents (minor units), > 0.")
    currency: str = strawberry.field(description="ISO 4217, e.g. EUR.")
    occurred_at: datetime
    kind: PurchaseKind = PurchaseKind.PURCHASE
    idempotency_key: str


@strawberry.input
class RecordRefundInput:
    order_id: str
    amount_cents: int | None = strawberry.field(
        default=None, description="In cents; omitted: all that is left of the purchase."
    )
    occurred_at: datetime
    reason: str | None = None
    idempotency_key: str


def _fields(input: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(input, name) for name in names}


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record a purchase once per order (purchases:write).",
        extensions=[needs(Permission.PURCHASES_WRITE)],
    )
    async def record_purchase(self, info: CrmInfo, input: RecordPurchaseInput) -> PurchaseRecord:
        principal = info.context.principal
        key = service.request_key(input.idempotency_key, field="input.idempotencyKey")
        data = _fields(
            input, ("order_id", "customer_id", "amount_cents", "currency", "occurred_at", "kind")
        )
        report = service.parse_report(PurchaseReport, data, style="graphql")
        async with info.context.transaction() as session:
            recorded = await service.record_purchase(
                session=session,
                tenant_id=principal.tenant_id,
                report=report,
                idempotency_key=key,
                actor=principal.actor,
                style="graphql",
                key_field="input.idempotencyKey",
                ttl_days=_settings(info).points_ttl_days,
            )
        return PurchaseRecord(
            purchase=PurchaseType.from_model(recorded.purchase), replayed=recorded.replayed
        )

    @strawberry.mutation(
        description="Refund (part of) a purchase, never more than is left (purchases:write).",
        extensions=[needs(Permission.PURCHASES_WRITE)],
    )
    async def record_refund(self, info: CrmInfo, input: RecordRefundInput) -> RefundRecord:
        principal = info.context.principal
        key = service.request_key(input.idempotency_key, field="input.idempotencyKey")
        data = _fields(input, ("order_id", "amount_cents", "occurred_at", "reason"))
        report = service.parse_report(RefundReport, data, style="graphql")
        async with info.context.transaction() as session:
            recorded = await service.record_refund(
                session=session,
                tenant_id=principal.tenant_id,
                report=report,
                idempotency_key=key,
                actor=principal.actor,
                style="graphql",
                key_field="input.idempotencyKey",
            )
        assert recorded.refund is not None
        return RefundRecord(
            refund_id=strawberry.ID(str(recorded.refund.id)),
            amount_cents=recorded.refund.amount_cents,
            purchase=PurchaseType.from_model(recorded.purchase),
            replayed=recorded.replayed,
        )
