"""``POST /purchases`` and ``POST /refunds``: partners report facts over HTTP.

Bearer token with ``purchases:write``; an ``Idempotency-Key`` header is required. The same key
with the same body answers the first response again (with ``Idempotent-Replayed: true``); with
another body 409. Invalid bodies answer 422 naming the field, in our error shape
(``{"error": {"code", "field", "message"}}``); nothing is written then.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from crm_shared.auth import Permission, Principal
from crm_shared.db import Database
from crm_shared.errors import BadUserInput
from crm_shared.http import requires
from rewards.purchases import service
from rewards.purchases.models import Purchase, PurchaseReport, Refund, RefundReport
from rewards.settings import RewardsSettings

Writer = Annotated[Principal, Depends(requires(Permission.PURCHASES_WRITE))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
MAX_BODY_BYTES = 64 * 1024


def purchase_body(purchase: Purchase) -> dict[str, Any]:
    """A purchase as the endpoints answer it."""
    return {
        "purchase_id": str(purchase.id),
        "order_id": purchase.order_id,
        "customer_id": str(purchase.customer_id),
        "amount_cents": purchase.amount_cents,
        "currency": purchase.currency,
        "kind": purchase.kind,
        "occurred_at": purchase.occurred_at.isoformat(),
    }


def refund_body(purchase: Purchase, refund: Refund) -> dict[str, Any]:
    """A refund as ``POST /refunds`` answers it."""
    return {
        "refund_id": str(refund.id),
        "purchase_id": str(purchase.id),
        "order_id": purchase.order_id,
        "amount_cents": refund.amount_cents,
        "purchase_amount_cents": purchase.amount_cents,
    }


async def _json(request: Request) -> object:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BadUserInput(f"body: larger than {MAX_BODY_BYTES} bytes", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadUserInput(f"body: not valid JSON ({exc})", field="body") from None


def _answer(body: dict[str, Any], replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(body, status_code=201, headers=headers)


def purchases_router(settings: RewardsSettings) -> APIRouter:
    """The partner endpoints."""
    router = APIRouter(tags=["purchases"])

    @router.post("/purchases", status_code=201)
    async def report_purchase(
        request: Request, principal: Writer, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        """Record a purchase (once per order)."""
        key = service.request_key(idempotency_key, field="Idempotency-Key")
        report = service.parse_report(PurchaseReport, await _json(request), style="http")
        db: Database = request.app.state.db
        async with db.session() as session, session.begin():
            recorded = await service.record_purchase(
                session=session,
                tenant_id=principal.tenant_id,
                report=report,
                idempotency_key=key,
                actor=principal.actor,
                ttl_days=settings.points_ttl_days,
            )
        return _answer(purchase_body(recorded.purchase), recorded.replayed)

    @router.post("/refunds", status_code=201)
    async def report_refund(
        request: Request, principal: Writer, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        """Record a full or partial refund of a purchase."""
        key = service.request_key(idempotency_key, field="Idempotency-Key")
        report = service.parse_report(RefundReport, await _json(request), style="http")
        db: Database = request.app.state.db
        async with db.session() as session, session.begin():
            recorded = await service.record_refund(
                session=session,
                tenant_id=principal.tenant_id,
                report=report,
                idempotency_key=key,
                actor=principal.actor,
            )
        assert recorded.refund is not None
        return _answer(refund_body(recorded.purchase, recorded.refund), recorded.replayed)

    return router
