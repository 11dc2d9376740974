"""Money follows identity's merges: the merged customer's purchases, coupons and the referral
that brought them move to the survivor, customers they referred count for the survivor (and
their referral code attributes to it), and the values of everyone touched are recomputed and
announced (``rewards.customer_value.changed.v1``, through the outbox).

An unmerge is the exact inverse: the rows the merge moved go back (whatever the survivor did
since), referrals made with the restored customer's code go back to it, and values are
recomputed again. Purchases and coupons the survivor got during the merge stay with it.
Each step is idempotent (the consumer's inbox, plus the moves being keyed by the merge), and
an unmerge that arrives before its merge is remembered so that the merge then does nothing.
(Points move in the ledger's own handler, ``rewards.accounts.merges``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.events import Envelope
from crm_shared.privacy import CustomerMerged, CustomerUnmerged
from rewards.offers.models import Coupon
from rewards.purchases.models import Purchase
from rewards.referrals.models import Referral, ReferralCode
from rewards.value import service as value_service
from rewards.value.models import AppliedMerge, MergeMove


async def _merge_row(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    merge_id: uuid.UUID,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
) -> AppliedMerge:
    """The merge's row, made if new, locked for this transaction."""
    await session.execute(
        insert(AppliedMerge)
        .values(
            merge_id=merge_id, tenant_id=tenant_id, survivor_id=survivor_id, merged_id=merged_id
        )
        .on_conflict_do_nothing()
    )
    row = (
        await session.exec(
            select(AppliedMerge)
            .where(AppliedMerge.merge_id == merge_id, AppliedMerge.tenant_id == tenant_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    return row


async def _move(
    session: AsyncSession,
    merge_id: uuid.UUID,
    kind: str,
    table: type[Purchase] | type[Coupon] | type[Referral],
    column: str,
    tenant_id: uuid.UUID,
    from_customer: uuid.UUID,
    to_customer: uuid.UUID,
) -> list[uuid.UUID]:
    """Re-key ``table``'s rows of ``from_customer`` (by ``column``) to ``to_customer`` and
    write each moved row down for the unmerge."""
    moved = await session.execute(
        update(table)
        .where(col(table.tenant_id) == tenant_id, getattr(table, column) == from_customer)
        .values({column: to_customer})
        .returning(col(table.id))
    )
    ids = [row[0] for row in moved]
    if ids:
        await session.execute(
            insert(MergeMove)
            .values([{"merge_id": merge_id, "kind": kind, "row_id": id_} for id_ in ids])
            .on_conflict_do_nothing()
        )
    return ids


async def _referrers(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    found = await session.execute(
        select(Referral.referrer_id).where(
            Referral.tenant_id == tenant_id, col(Referral.referred_id).in_(customer_ids)
        )
    )
    return {row[0] for row in found}


async def _refresh(
    session: AsyncSession, tenant_id: uuid.UUID, customers: Sequence[uuid.UUID]
) -> None:
    """Recompute the values of ``customers`` and of whoever referred them."""
    touched = set(customers) | await _referrers(session, tenant_id, customers)
    await value_service.refresh(session=session, tenant_id=tenant_id, customer_ids=touched)


async def move_money_to_survivor(
    event: CustomerMerged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Move the merged customer's purchases, coupons and the referral that brought them to the
    survivor; recompute the values this changes."""
    tenant_id = envelope.tenantid
    merge = await _merge_row(session, tenant_id, event.merge_id, event.survivor_id, event.merged_id)
    if merge.merged_at is not None or merge.unmerged_at is not None:
        return  # applied already, or undone before it arrived
    merge.merged_at = utcnow()
    session.add(merge)
    await session.flush()
    survivor, merged = event.survivor_id, event.merged_id
    before = await _referrers(session, tenant_id, [merged])
    await _move(
        session, merge.merge_id, "purchase", Purchase, "customer_id", tenant_id, merged, survivor
    )
    await _move(
        session, merge.merge_id, "coupon", Coupon, "customer_id", tenant_id, merged, survivor
    )
    # The customers the merged one referred count for the survivor (not written down: the
    # unmerge gives back every referral made with the restored customer's code).
    await session.execute(
        update(Referral)
        .where(col(Referral.tenant_id) == tenant_id, col(Referral.referrer_id) == merged)
        .values(referrer_id=survivor, updated_at=utcnow())
    )
    # Who referred the merged customer referred the survivor, unless someone did already.
    if not await _referrers(session, tenant_id, [survivor]):
        await _move(
            session,
            merge.merge_id,
            "referral",
            Referral,
            "referred_id",
            tenant_id,
            merged,
            survivor,
        )
    await _refresh(session, tenant_id, [survivor, merged, *before])


async def move_money_back(
    event: CustomerUnmerged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Give the restored customer back exactly what the merge moved, and the referrals made
    with its code; recompute the values this changes."""
    tenant_id = envelope.tenantid
    merge = await _merge_row(
        session, tenant_id, event.merge_id, event.survivor_id, event.restored_id
    )
    if merge.unmerged_at is not None:
        return
    merge.unmerged_at = utcnow()
    session.add(merge)
    await session.flush()
    if merge.merged_at is None:
        return  # the merge had not arrived: it will find this and change nothing
    survivor, restored = event.survivor_id, event.restored_id
    moves = await session.exec(select(MergeMove).where(MergeMove.merge_id == merge.merge_id))
    by_kind: dict[str, list[uuid.UUID]] = {}
    for move in moves:
        by_kind.setdefault(move.kind, []).append(move.row_id)
    referrers = await _referrers(session, tenant_id, [survivor])
    for kind, table, column in (
        ("purchase", Purchase, "customer_id"),
        ("coupon", Coupon, "customer_id"),
        ("referral", Referral, "referred_id"),
    ):
        if by_kind.get(kind):
            await session.execute(
                update(table)
                .where(
                    col(table.tenant_id) == tenant_id,
                    col(table.id).in_(by_kind[kind]),
                    getattr(table, column) == survivor,
                )
                .values({column: restored})
            )
    code = (
        await session.execute(
            select(ReferralCode.code).where(
                ReferralCode.tenant_id == tenant_id, ReferralCode.customer_id == restored
            )
        )
    ).scalar_one_or_none()
    if code is not None:
        await session.execute(
            update(Referral)
            .where(
                col(Referral.tenant_id) == tenant_id,
                col(Referral.referrer_id) == survivor,
                col(Referral.code) == code,
            )
            .values(referrer_id=restored, updated_at=utcnow())
        )
    await _refresh(session, tenant_id, [survivor, restored, *referrers])


async def current_customer(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> uuid.UUID:
    """The customer that ``customer_id`` stands for now: the survivor of the open merges it
    went into (in turn), else itself."""
    seen = {customer_id}
    while True:
        survivor = (
            await session.execute(
                select(AppliedMerge.survivor_id).where(
                    AppliedMerge.tenant_id == tenant_id,
                    AppliedMerge.merged_id == customer_id,
                    col(AppliedMerge.merged_at).is_not(None),
                    col(AppliedMerge.unmerged_at).is_(None),
                )
            )
        ).scalar_one_or_none()
        if survivor is None or survivor in seen:
            return customer_id
        seen.add(survivor)
        customer_id = survivor
