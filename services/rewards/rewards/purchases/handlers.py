"""Partners' purchase facts from the exchange: recorded like the HTTP requests, keyed by the
CloudEvent's id. Content no retry can fix is parked at once with the reason; a customer or
order rewards does not know yet is retried (its own event may still be on its way)."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.errors import BadUserInput, Conflict
from crm_shared.events import Envelope
from crm_shared.events.consumer import Handler, Rejected
from crm_shared.privacy import ErasureRequested
from rewards.purchases import service
from rewards.purchases.events import PurchaseReported, RefundReported
from rewards.purchases.models import PurchaseReport, RefundReport


def _actor(envelope: Envelope) -> str:
    return f"event:{envelope.source}"[:200]


async def record_reported_purchase(
    event: PurchaseReported, *, envelope: Envelope, session: AsyncSession, ttl_days: int
) -> None:
    """Record a partner's purchase event."""
    try:
        await service.record_purchase(
            session=session,
            tenant_id=envelope.tenantid,
            report=PurchaseReport.model_validate(event.model_dump()),
            idempotency_key=f"event:{envelope.id}",
            actor=_actor(envelope),
            key_field="id",
            ttl_days=ttl_days,
        )
    except (BadUserInput, Conflict) as exc:
        raise Rejected(exc.message) from None


async def record_reported_refund(
    event: RefundReported, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Record a partner's refund event."""
    try:
        await service.record_refund(
            session=session,
            tenant_id=envelope.tenantid,
            report=RefundReport.model_validate(event.model_dump()),
            idempotency_key=f"event:{envelope.id}",
            actor=_actor(envelope),
            key_field="id",
        )
    except (BadUserInput, Conflict) as exc:
        raise Rejected(exc.message) from None


async def erase_refund_reasons(
    event: ErasureRequested, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Amounts stay (values must not move); the free-text reasons of refunds go."""
    await service.erase_refund_reasons(
        session=session,
        tenant_id=envelope.tenantid,
        customer_ids=[event.customer_id, *event.customer_ids],
    )


def purchase_handlers(ttl_days: int) -> list[Handler[Any]]:
    """The partner fact handlers, with the points' lifetime bound (referral rewards)."""
    return [
        Handler(PurchaseReported, partial(record_reported_purchase, ttl_days=ttl_days)),
        Handler(RefundReported, record_reported_refund),
        Handler(ErasureRequested, erase_refund_reasons),
    ]
