"""Recording the purchases and refunds partners report, idempotently.

A request carries a key (``request:<Idempotency-Key>`` over HTTP and GraphQL,
``event:<CloudEvent id>`` for partner events): the same key with the same content returns
the first result (``replayed``), with other content it is a CONFLICT. An order is recorded
once per tenant: reported again with the same content (under another key) it is the same
purchase; with other content a CONFLICT on ``order_id``. A purchase or refund also qualifies
or un-qualifies the buyer's referral and refreshes the value of the buyer and their referrer,
all in the same transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page
from rewards.accounts import service as ledger
from rewards.accounts.models import Account, AccountKind
from rewards.purchases.events import PurchaseRecorded, PurchaseRefunded
from rewards.purchases.models import (
    Purchase,
    PurchaseReport,
    PurchaseRequest,
    Refund,
    RefundReport,
    TenantCurrency,
)
from rewards.referrals import service as referrals
from rewards.value import service as value

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Recorded:
    """A purchase (and, for a refund, the refund) and whether the key had been used already."""

    purchase: Purchase
    refund: Refund | None = None
    replayed: bool = False


M = TypeVar("M", bound=BaseModel)


def field_name(path: Sequence[str | int], *, style: str) -> str:
    """A field path as the caller spells it: ``amount_cents`` (HTTP) or ``input.amountCents``."""
    if style == "graphql":
        parts = ["input"]
        for part in path:
            head, *rest = str(part).split("_")
            parts.append(head + "".join(word.title() for word in rest))
        return ".".join(parts)
    return ".".join(str(part) for part in path) or "body"


def parse_report(model: type[M], data: object, *, style: str) -> M:
    """``data`` validated as ``model``; BAD_USER_INPUT naming the first invalid field."""
    if not isinstance(data, dict):
        raise BadUserInput("body: must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = field_name(first["loc"], style=style)
        raise BadUserInput(f"{name}: {first['msg']}", field=name) from None


def request_key(caller_key: str | None, *, field: str) -> str:
    """The stored key of a caller's idempotency key; BAD_USER_INPUT if missing or too long."""
    if caller_key is None or not caller_key.strip():
        raise BadUserInput(f"{field}: required (a key of your own for this request)", field=field)
    if len(caller_key) > MAX_KEY_LENGTH:
        raise BadUserInput(f"{field}: at most {MAX_KEY_LENGTH} characters", field=field)
    return f"request:{caller_key.strip()}"


def _print(report: BaseModel) -> str:
    content = report.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _name(style: str, snake: str) -> str:
    return field_name([snake], style=style)


async def _claim_key(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    operation: str,
    key: str,
    fingerprint: str,
    result_id: uuid.UUID,
    key_field: str,
) -> uuid.UUID | None:
    """Claim ``key`` for this request; the first result's id if it had been used the same way."""
    inserted = await session.execute(
        insert(PurchaseRequest)
        .values(
            tenant_id=tenant_id,
            operation=operation,
            key=key,
            fingerprint=fingerprint,
            result_id=result_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(col(PurchaseRequest.key))
    )
    if inserted.first() is not None:
        return None
    existing = (
        await session.exec(
            select(PurchaseRequest).where(
                PurchaseRequest.tenant_id == tenant_id,
                PurchaseRequest.operation == operation,
                PurchaseRequest.key == key,
            )
        )
    ).one()
    if existing.fingerprint != fingerprint:
        raise Conflict(
            f"{key_field}: this key was used for a different {operation}; use a new key",
            field=key_field,
        )
    return existing.result_id


async def _check_customer(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, field: str
) -> None:
    # Rewards knows a customer by the account it opened when identity announced them.
    known = await session.execute(
        select(Account.id).where(
            Account.tenant_id == tenant_id,
            Account.customer_id == customer_id,
            Account.kind == AccountKind.CUSTOMER.value,
        )
    )
    if known.first() is None:
        raise NotFound(f"{field}: no such customer", field=field)


async def _check_currency(
    session: AsyncSession, tenant_id: uuid.UUID, currency: str, field: str
) -> None:
    await session.execute(
        insert(TenantCurrency)
        .values(tenant_id=tenant_id, currency=currency, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    fixed = (
        await session.execute(
            select(TenantCurrency.currency).where(TenantCurrency.tenant_id == tenant_id)
        )
    ).scalar_one()
    if fixed != currency:
        raise BadUserInput(
            f"{field}: this tenant's purchases are in {fixed}; convert before reporting",
            field=field,
        )


def _same(purchase: Purchase, report: PurchaseReport) -> bool:
    return (
        purchase.customer_id == report.customer_id
        and purchase.amount_cents == report.amount_cents
        and purchase.currency == report.currency
        and purchase.kind == report.kind.value
        and purchase.occurred_at == report.occurred_at
    )


async def record_purchase(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    report: PurchaseReport,
    idempotency_key: str,
    actor: str,
    style: str = "http",
    key_field: str = "Idempotency-Key",
    ttl_days: int = ledger.DEFAULT_TTL_DAYS,
) -> Recorded:
    """Record a reported purchase once; qualify the buyer's referral; refresh values."""
    planned = uuid.uuid4()
    earlier = await _claim_key(
        session, tenant_id, "purchase", idempotency_key, _print(report), planned, key_field
    )
    if earlier is not None:
        return Recorded(purchase=await _purchase(session, tenant_id, earlier), replayed=True)
    await _check_customer(session, tenant_id, report.customer_id, _name(style, "customer_id"))
    await _check_currency(session, tenant_id, report.currency, _name(style, "currency"))
    inserted = await session.execute(
        insert(Purchase)
        .values(
            id=planned,
            tenant_id=tenant_id,
            customer_id=report.customer_id,
            order_id=report.order_id,
            amount_cents=report.amount_cents,
            refunded_cents=0,
            currency=report.currency,
            kind=report.kind.value,
            occurred_at=report.occurred_at,
            actor=actor,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(constraint="purchases_tenant_order")
        .returning(col(Purchase.id))
    )
    if inserted.first() is None:
        existing = await _purchase_by_order(session, tenant_id, report.order_id, style)
        if not _same(existing, report):
            field = _name(style, "order_id")
            raise Conflict(f"{field}: this order was reported with other content", field=field)
        await _point_key_at(session, tenant_id, "purchase", idempotency_key, existing.id)
        return Recorded(purchase=existing, replayed=True)
    purchase = await _purchase(session, tenant_id, planned)
    await record_event(
        session,
        PurchaseRecorded(
            purchase_id=purchase.id,
            customer_id=purchase.customer_id,
            order_id=purchase.order_id,
            amount_cents=purchase.amount_cents,
            currency=purchase.currency,
            kind=purchase.kind,
            occurred_at=purchase.occurred_at,
        ),
        tenant_id=tenant_id,
        subject=str(purchase.customer_id),
    )
    await referrals.purchase_recorded(session=session, purchase=purchase, ttl_days=ttl_days)
    await _refresh_values(session, purchase)
    return Recorded(purchase=purchase)


async def record_refund(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    report: RefundReport,
    idempotency_key: str,
    actor: str,
    style: str = "http",
    key_field: str = "Idempotency-Key",
) -> Recorded:
    """Refund (part of) a purchase, never more than is left; un-qualify its referral if needed."""
    planned = uuid.uuid4()
    earlier = await _claim_key(
        session, tenant_id, "refund", idempotency_key, _print(report), planned, key_field
    )
    if earlier is not None:
        refund = (
            await session.exec(
                select(Refund).where(Refund.tenant_id == tenant_id, Refund.id == earlier)
            )
        ).one()
        purchase = await _purchase(session, tenant_id, refund.purchase_id)
        return Recorded(purchase=purchase, refund=refund, replayed=True)
    purchase = await _purchase_by_order(session, tenant_id, report.order_id, style, lock=True)
    left = purchase.net_cents
    if left == 0:
        field = _name(style, "order_id")
        raise BadUserInput(f"{field}: this purchase is already fully refunded", field=field)
    amount = report.amount_cents if report.amount_cents is not None else left
    if amount > left:
        field = _name(style, "amount_cents")
        raise BadUserInput(
            f"{field}: more than the {left} cents left to refund of this purchase", field=field
        )
    refund = Refund(
        id=planned,
        tenant_id=tenant_id,
        purchase_id=purchase.id,
        amount_cents=amount,
        occurred_at=report.occurred_at,
        reason=report.reason,
        actor=actor,
    )
    session.add(refund)
    purchase.refunded_cents = (
        await session.execute(
            update(Purchase)
            .where(col(Purchase.id) == purchase.id)
            .values(refunded_cents=col(Purchase.refunded_cents) + amount)
            .returning(col(Purchase.refunded_cents))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    await session.flush()
    await record_event(
        session,
        PurchaseRefunded(
            purchase_id=purchase.id,
            refund_id=refund.id,
            customer_id=purchase.customer_id,
            amount_cents=amount,
            purchase_amount_cents=purchase.amount_cents,
        ),
        tenant_id=tenant_id,
        subject=str(purchase.customer_id),
    )
    await referrals.purchase_refunded(session=session, purchase=purchase)
    await _refresh_values(session, purchase)
    return Recorded(purchase=purchase, refund=refund)


async def _refresh_values(session: AsyncSession, purchase: Purchase) -> None:
    touched = [purchase.customer_id]
    referrer = await value.referrer_of(session, purchase.tenant_id, purchase.customer_id)
    if referrer is not None:
        touched.append(referrer)
    await value.refresh(session=session, tenant_id=purchase.tenant_id, customer_ids=touched)


async def _point_key_at(
    session: AsyncSession, tenant_id: uuid.UUID, operation: str, key: str, result_id: uuid.UUID
) -> None:
    await session.execute(
        update(PurchaseRequest)
        .where(
            col(PurchaseRequest.tenant_id) == tenant_id,
            col(PurchaseRequest.operation) == operation,
            col(PurchaseRequest.key) == key,
        )
        .values(result_id=result_id)
        .execution_options(synchronize_session=False)
    )


async def _purchase(
    session: AsyncSession, tenant_id: uuid.UUID, purchase_id: uuid.UUID
) -> Purchase:
    return (
        await session.exec(
            select(Purchase)
            .where(Purchase.tenant_id == tenant_id, Purchase.id == purchase_id)
            .execution_options(populate_existing=True)
        )
    ).one()


async def _purchase_by_order(
    session: AsyncSession, tenant_id: uuid.UUID, order_id: str, style: str, *, lock: bool = False
) -> Purchase:
    query = select(Purchase).where(Purchase.tenant_id == tenant_id, Purchase.order_id == order_id)
    if lock:
        query = query.with_for_update()
    found = (await session.exec(query.execution_options(populate_existing=True))).one_or_none()
    if found is None:
        field = _name(style, "order_id")
        raise NotFound(f"{field}: no purchase with this order id", field=field)
    return found


async def purchases_of(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Purchase]:
    """The customer's purchases, most recent first."""
    query = select(Purchase).where(
        Purchase.tenant_id == tenant_id, Purchase.customer_id == customer_id
    )
    page = keyset_page(
        query, col(Purchase.occurred_at), col(Purchase.id), after, limit=limit, newest_first=True
    )
    return list((await session.exec(page)).all())


async def erase_refund_reasons(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Blank the free-text reasons of the customers' refunds (erasure)."""
    purchases = select(Purchase.id).where(
        Purchase.tenant_id == tenant_id, col(Purchase.customer_id).in_(customer_ids)
    )
    await session.execute(
        update(Refund)
        .where(col(Refund.tenant_id) == tenant_id, col(Refund.purchase_id).in_(purchases))
        .values(reason=None)
        .execution_options(synchronize_session=False)
    )


async def export_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The customer's purchases with their refunds, as plain JSON (privacy export)."""
    rows = (
        await session.exec(
            select(Purchase)
            .where(Purchase.tenant_id == tenant_id, Purchase.customer_id == customer_id)
            .order_by(col(Purchase.occurred_at), col(Purchase.id))
        )
    ).all()
    refunds = (
        await session.exec(
            select(Refund).where(
                Refund.tenant_id == tenant_id, col(Refund.purchase_id).in_([p.id for p in rows])
            )
        )
    ).all()
    return [
        {
            "order_id": p.order_id,
            "amount_cents": p.amount_cents,
            "currency": p.currency,
            "kind": p.kind,
            "occurred_at": p.occurred_at.isoformat(),
            "refunds": [
                {
                    "amount_cents": r.amount_cents,
                    "occurred_at": r.occurred_at.isoformat(),
                    "reason": r.reason,
                }
                for r in refunds
                if r.purchase_id == p.id
            ],
        }
        for p in rows
    ]
