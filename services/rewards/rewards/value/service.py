"""Customer value: own purchases net of refunds, plus the revenue of the customers referred.

A referred customer's revenue counts for their referrer from the attribution on, unless the
referral was rejected. Values are recomputed (never incremented) for the customers a change
touches, under a row lock, and announced only when they changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.events import record_event
from rewards.purchases.models import Purchase, TenantCurrency
from rewards.referrals.models import Referral, ReferralStatus
from rewards.value.events import CustomerValueChanged
from rewards.value.models import CustomerValue


async def _own_revenue(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> int:
    total = await session.execute(
        select(
            func.coalesce(func.sum(col(Purchase.amount_cents) - col(Purchase.refunded_cents)), 0)
        ).where(Purchase.tenant_id == tenant_id, Purchase.customer_id == customer_id)
    )
    return int(total.scalar_one())


async def _referral_revenue(
    session: AsyncSession, tenant_id: uuid.UUID, referrer_id: uuid.UUID
) -> int:
    total = await session.execute(
        select(
            func.coalesce(func.sum(col(Purchase.amount_cents) - col(Purchase.refunded_cents)), 0)
        )
        .select_from(Referral)
        .join(
            Purchase,
            (col(Purchase.tenant_id) == col(Referral.tenant_id))
            & (col(Purchase.customer_id) == col(Referral.referred_id)),
        )
        .where(
            Referral.tenant_id == tenant_id,
            Referral.referrer_id == referrer_id,
            Referral.status != ReferralStatus.REJECTED.value,
        )
    )
    return int(total.scalar_one())


async def _currency(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    found = await session.execute(
        select(TenantCurrency.currency).where(TenantCurrency.tenant_id == tenant_id)
    )
    return found.scalar_one_or_none()


async def refresh(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Iterable[uuid.UUID]
) -> list[CustomerValue]:
    """Recompute the values of ``customer_ids``; announce those that changed."""
    changed = []
    currency = await _currency(session, tenant_id)
    # One order of locks whatever the caller's order, so two refreshes never deadlock.
    for customer_id in sorted(set(customer_ids)):
        await session.execute(
            insert(CustomerValue)
            .values(tenant_id=tenant_id, customer_id=customer_id, updated_at=utcnow())
            .on_conflict_do_nothing()
        )
        row = (
            await session.exec(
                select(CustomerValue)
                .where(
                    CustomerValue.tenant_id == tenant_id, CustomerValue.customer_id == customer_id
                )
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        own = await _own_revenue(session, tenant_id, customer_id)
        referral = await _referral_revenue(session, tenant_id, customer_id)
        if (row.own_revenue_cents, row.referral_revenue_cents, row.currency) == (
            own,
            referral,
            currency,
        ):
            continue
        row.own_revenue_cents, row.referral_revenue_cents = own, referral
        row.currency, row.updated_at = currency, utcnow()
        session.add(row)
        await record_event(
            session,
            CustomerValueChanged(
                customer_id=customer_id,
                value_cents=own + referral,
                own_revenue_cents=own,
                referral_revenue_cents=referral,
                currency=currency,
            ),
            tenant_id=tenant_id,
            subject=str(customer_id),
        )
        changed.append(row)
    await session.flush()
    return changed


async def referrer_of(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> uuid.UUID | None:
    """Who referred ``customer_id`` (whatever the referral's status), or None."""
    found = await session.execute(
        select(Referral.referrer_id).where(
            Referral.tenant_id == tenant_id, Referral.referred_id == customer_id
        )
    )
    return found.scalar_one_or_none()


async def get_values(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerValue]:
    """The stored values of the customers among ``customer_ids`` that have one."""
    rows = await session.exec(
        select(CustomerValue).where(
            CustomerValue.tenant_id == tenant_id, col(CustomerValue.customer_id).in_(customer_ids)
        )
    )
    return {row.customer_id: row for row in rows.all()}
