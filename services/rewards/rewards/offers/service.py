"""Offers and coupons: the offer's life, issuing coupons within stock and limits, redeeming.

Limits hold in the database, not in Python: issuing a coupon first counts it against the
customer (a conditional upsert of ``offer_claims``: ``count + 1 <= limit``), then against the
offer's stock (a conditional ``UPDATE offers SET issued = issued + n WHERE issued + n <=
stock AND status = 'published'``), then writes the coupon, all in the caller's transaction. A
claim that loses either race changes no row and fails; concurrent claims queue on those two
rows (the customer's first, then the offer's, so they cannot deadlock). Redeeming is one
conditional update of the coupon (``WHERE redeemed_at IS NULL AND not expired``): of any
number of concurrent redemptions of a code exactly one changes the row.

Marketing consent is honoured everywhere a customer is concerned: without it, no offer is
shown to, claimed by, issued or granted to them (``crm_shared.privacy.consent_allows``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, CrmError, NotFound
from crm_shared.events import record_event
from crm_shared.pagination import keyset_page, keyset_pages
from crm_shared.privacy import consent_allows
from rewards.offers import codes
from rewards.offers.events import (
    CouponGrantFailed,
    CouponIssued,
    CouponRedeemed,
    OfferEnded,
    OfferPublished,
)
from rewards.offers.models import (
    AudienceMember,
    Coupon,
    CouponGrant,
    CouponSource,
    CouponStatus,
    GrantStatus,
    Offer,
    OfferClaim,
    OfferCreate,
    OfferStatus,
    in_audience,
)

MARKETING = "marketing"
MAX_BULK = 1000
MAX_ORDER_ID = 200
MAX_ELIGIBLE_SCAN = 500


@dataclass(frozen=True)
class Grant:
    """A coupon granted by another part of rewards (a rule, a referral milestone)."""

    grant_id: uuid.UUID
    customer_id: uuid.UUID
    offer_id: uuid.UUID
    source: str
    source_event_id: str | None


# Offers -----------------------------------------------------------------------------------


async def create_offer(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: OfferCreate,
    actor: str,
    now: datetime | None = None,
) -> Offer:
    """A new draft offer."""
    offer = Offer(
        tenant_id=tenant_id,
        name=data.name,
        description=data.description,
        kind=data.kind.value,
        percent_off=data.percent_off,
        amount_off=data.amount_off,
        currency=data.currency,
        free_item=data.free_item,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        flash=data.flash,
        stock=data.stock,
        per_customer_limit=data.per_customer_limit,
        target_segments=data.audience.segments,
        target_tiers=data.audience.tiers,
        target_influencers=data.audience.influencers,
        target_advocates=data.audience.advocates,
        created_by=actor,
        created_at=now or utcnow(),
    )
    session.add(offer)
    await session.flush()
    return offer


async def get_offer(
    *, session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID, lock: bool = False
) -> Offer:
    """The tenant's offer; NOT_FOUND on ``offerId`` otherwise."""
    query = select(Offer).where(Offer.tenant_id == tenant_id, Offer.id == offer_id)
    if lock:
        query = query.with_for_update()
    offer = (await session.exec(query.execution_options(populate_existing=True))).first()
    if offer is None:
        raise NotFound("offerId: no such offer", field="offerId")
    return offer


async def get_offers(
    *, session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Offer]:
    """The tenant's offers among ``ids``."""
    rows = await session.exec(
        select(Offer).where(Offer.tenant_id == tenant_id, col(Offer.id).in_(list(ids)))
    )
    return {offer.id: offer for offer in rows.all()}


async def require_offers(
    *, session: AsyncSession, tenant_id: uuid.UUID, offer_ids: Mapping[str, uuid.UUID | None]
) -> None:
    """NOT_FOUND on the first field whose offer is not the tenant's (another tenant's offer
    is no more found than a made-up id): ``offer_ids`` maps input fields to the ids given."""
    wanted = {field: offer_id for field, offer_id in offer_ids.items() if offer_id is not None}
    if not wanted:
        return
    found = await get_offers(session=session, tenant_id=tenant_id, ids=list(set(wanted.values())))
    for field, offer_id in wanted.items():
        if offer_id not in found:
            raise NotFound(f"{field}: no such offer", field=field)


async def list_offers(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    status: OfferStatus | None,
    limit: int,
    position: tuple[datetime, uuid.UUID] | None = None,
) -> list[Offer]:
    """The tenant's offers, newest first."""
    query = select(Offer).where(Offer.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Offer.status == status.value)
    page = keyset_page(
        query, col(Offer.created_at), col(Offer.id), position, limit=limit, newest_first=True
    )
    return list((await session.exec(page)).all())


async def publish_offer(
    *, session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID, now: datetime | None = None
) -> Offer:
    """draft → published (CONFLICT from any other status; an offer already over is refused)."""
    now = now or utcnow()
    offer = await get_offer(session=session, tenant_id=tenant_id, offer_id=offer_id, lock=True)
    if offer.status != OfferStatus.DRAFT.value:
        raise Conflict(f"offerId: the offer is {offer.status}, not a draft", field="offerId")
    if offer.ends_at is not None and offer.ends_at <= now:
        raise BadUserInput("offerId: the offer's endsAt has passed", field="offerId")
    offer.status = OfferStatus.PUBLISHED.value
    offer.published_at = now
    session.add(offer)
    await session.flush()
    await record_event(
        session,
        OfferPublished(
            offer_id=offer.id,
            name=offer.name,
            kind=offer.kind,
            starts_at=offer.starts_at,
            ends_at=offer.ends_at,
            flash=offer.flash,
            stock=offer.stock,
            segments=offer.target_segments,
            tiers=offer.target_tiers,
            influencers=offer.target_influencers,
            advocates=offer.target_advocates,
        ),
        tenant_id=tenant_id,
        subject=str(offer.id),
    )
    return offer


async def end_offer(
    *, session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID, now: datetime | None = None
) -> Offer:
    """draft or published → ended: nothing more is issued; unredeemed coupons expire now."""
    now = now or utcnow()
    offer = await get_offer(session=session, tenant_id=tenant_id, offer_id=offer_id, lock=True)
    if offer.status == OfferStatus.ENDED.value:
        raise Conflict("offerId: the offer has already ended", field="offerId")
    offer.status = OfferStatus.ENDED.value
    offer.ended_at = now
    session.add(offer)
    await session.flush()
    await session.execute(
        update(Coupon)
        .where(
            col(Coupon.tenant_id) == tenant_id,
            col(Coupon.offer_id) == offer_id,
            col(Coupon.redeemed_at).is_(None),
            or_(col(Coupon.expires_at).is_(None), col(Coupon.expires_at) > now),
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    await record_event(
        session,
        OfferEnded(offer_id=offer.id, issued=offer.issued),
        tenant_id=tenant_id,
        subject=str(offer.id),
    )
    return offer


# Who may have what ------------------------------------------------------------------------


async def marketing_allowed(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> bool:
    """Whether the customer currently consents to marketing (never asked: no)."""
    allowed = await consent_allows(
        session, "rewards", tenant_id=tenant_id, customer_ids=[customer_id], purpose=MARKETING
    )
    return customer_id in allowed


async def audience_member(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> AudienceMember | None:
    """What rewards knows of the customer's segment, tier and influence."""
    return await session.get(AudienceMember, (tenant_id, customer_id))


async def eligible_offers(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    limit: int,
    now: datetime | None = None,
) -> list[Offer]:
    """Open offers the customer could claim now: in their audience, with stock, under their
    limit; none at all without marketing consent. Ending soonest first."""
    found = await eligible_offers_of(
        session=session, tenant_id=tenant_id, customer_ids=[customer_id], limit=limit, now=now
    )
    return found.get(customer_id, [])


async def eligible_offers_of(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    limit: int,
    now: datetime | None = None,
) -> dict[uuid.UUID, list[Offer]]:
    """``eligible_offers`` for many customers in four queries (customers without consent or
    without any eligible offer are left out)."""
    now = now or utcnow()
    consenting = await consent_allows(
        session, "rewards", tenant_id=tenant_id, customer_ids=customer_ids, purpose=MARKETING
    )
    if not consenting:
        return {}
    offers = (
        await session.exec(
            select(Offer)
            .where(
                Offer.tenant_id == tenant_id,
                Offer.status == OfferStatus.PUBLISHED.value,
                or_(col(Offer.starts_at).is_(None), col(Offer.starts_at) <= now),
                or_(col(Offer.ends_at).is_(None), col(Offer.ends_at) > now),
                or_(col(Offer.stock).is_(None), col(Offer.issued) < col(Offer.stock)),
            )
            .order_by(col(Offer.ends_at).asc().nulls_last(), col(Offer.created_at), col(Offer.id))
            .limit(MAX_ELIGIBLE_SCAN)
        )
    ).all()
    if not offers:
        return {}
    held_rows = await session.execute(
        select(OfferClaim.offer_id, OfferClaim.customer_id, OfferClaim.count).where(
            OfferClaim.tenant_id == tenant_id,
            col(OfferClaim.customer_id).in_(list(consenting)),
            col(OfferClaim.offer_id).in_([offer.id for offer in offers]),
        )
    )
    held = {(offer_id, customer): int(n) for offer_id, customer, n in held_rows.all()}
    members = {
        member.customer_id: member
        for member in (
            await session.exec(
                select(AudienceMember).where(
                    AudienceMember.tenant_id == tenant_id,
                    col(AudienceMember.customer_id).in_(list(consenting)),
                )
            )
        ).all()
    }
    found: dict[uuid.UUID, list[Offer]] = {}
    for customer in consenting:
        mine = [
            offer
            for offer in offers
            if held.get((offer.id, customer), 0) < offer.per_customer_limit
            and in_audience(offer, members.get(customer))
        ][:limit]
        if mine:
            found[customer] = mine
    return found


# Issuing ----------------------------------------------------------------------------------


def _check_open(offer: Offer, now: datetime) -> None:
    if offer.status != OfferStatus.PUBLISHED.value:
        raise BadUserInput(f"offerId: the offer is {offer.status}", field="offerId")
    if offer.starts_at is not None and now < offer.starts_at:
        raise BadUserInput("offerId: the offer has not started yet", field="offerId")
    if offer.ends_at is not None and now >= offer.ends_at:
        raise BadUserInput("offerId: the offer is over", field="offerId")


async def _count_against_customer(
    session: AsyncSession, offer: Offer, customer_id: uuid.UUID
) -> None:
    claims = OfferClaim.__table__  # type: ignore[attr-defined]
    statement = (
        insert(OfferClaim)
        .values(offer_id=offer.id, customer_id=customer_id, tenant_id=offer.tenant_id, count=1)
        .on_conflict_do_update(
            index_elements=["offer_id", "customer_id"],
            set_={"count": claims.c.count + 1},
            where=claims.c.count + 1 <= offer.per_customer_limit,
        )
        .returning(claims.c.count)
    )
    if (await session.execute(statement)).first() is None:
        raise Conflict(
            f"offerId: this customer already holds {offer.per_customer_limit} coupon(s) of this"
            " offer, its limit per customer",
            field="offerId",
        )


async def _count_against_stock(
    session: AsyncSession, offer: Offer, count: int, now: datetime
) -> None:
    taken = await session.execute(
        update(Offer)
        .where(
            col(Offer.tenant_id) == offer.tenant_id,
            col(Offer.id) == offer.id,
            col(Offer.status) == OfferStatus.PUBLISHED.value,
            or_(col(Offer.stock).is_(None), col(Offer.issued) + count <= col(Offer.stock)),
        )
        .values(issued=col(Offer.issued) + count)
        .returning(col(Offer.issued))
        .execution_options(synchronize_session=False)
    )
    issued = taken.scalar_one_or_none()
    if issued is None:
        # Lost the race: either the stock is gone or the offer was ended meanwhile.
        current = await get_offer(session=session, tenant_id=offer.tenant_id, offer_id=offer.id)
        _check_open(current, now)
        raise Conflict("offerId: the offer is out of stock", field="offerId")
    offer.issued = int(issued)


async def _write_coupons(
    session: AsyncSession,
    offer: Offer,
    *,
    count: int,
    customer_id: uuid.UUID | None,
    source: CouponSource,
    grant_id: uuid.UUID | None,
    now: datetime,
) -> list[Coupon]:
    """``count`` coupons with fresh codes (a code taken already is drawn again)."""
    made: list[Coupon] = []
    while len(made) < count:
        batch = [
            Coupon(
                tenant_id=offer.tenant_id,
                offer_id=offer.id,
                code=codes.new_code(),
                customer_id=customer_id,
                source=source.value,
                grant_id=grant_id,
                issued_at=now,
                expires_at=offer.ends_at,
            )
            for _ in range(count - len(made))
        ]
        inserted = await session.execute(
            insert(Coupon)
            .values([coupon.model_dump() for coupon in batch])
            .on_conflict_do_nothing(constraint="coupons_tenant_code")
            .returning(col(Coupon.id))
        )
        ids = set(inserted.scalars().all())
        made.extend(coupon for coupon in batch if coupon.id in ids)
    for coupon in made:
        await record_event(
            session,
            CouponIssued(
                coupon_id=coupon.id,
                offer_id=offer.id,
                customer_id=customer_id,
                source=source.value,
                grant_id=grant_id,
                expires_at=coupon.expires_at,
            ),
            tenant_id=offer.tenant_id,
            subject=str(customer_id or coupon.id),
        )
    return made


async def _issue_to_customer(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    offer_id: uuid.UUID,
    customer_id: uuid.UUID,
    source: CouponSource,
    check_audience: bool,
    grant_id: uuid.UUID | None = None,
    now: datetime,
) -> Coupon:
    offer = await get_offer(session=session, tenant_id=tenant_id, offer_id=offer_id)
    _check_open(offer, now)
    if not await marketing_allowed(session, tenant_id, customer_id):
        raise BadUserInput(
            "customerId: the customer does not consent to marketing", field="customerId"
        )
    if check_audience and not in_audience(
        offer, await audience_member(session, tenant_id, customer_id)
    ):
        raise BadUserInput(
            "customerId: the customer is not in this offer's audience", field="customerId"
        )
    # The customer's row first, then the offer's: every issuer locks in this order.
    await _count_against_customer(session, offer, customer_id)
    await _count_against_stock(session, offer, 1, now)
    [coupon] = await _write_coupons(
        session,
        offer,
        count=1,
        customer_id=customer_id,
        source=source,
        grant_id=grant_id,
        now=now,
    )
    return coupon


async def claim_offer(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer_id: uuid.UUID,
    customer_id: uuid.UUID,
    now: datetime | None = None,
) -> Coupon:
    """The customer claims a coupon of an open offer aimed at them (consent, stock, limit)."""
    return await _issue_to_customer(
        session,
        tenant_id=tenant_id,
        offer_id=offer_id,
        customer_id=customer_id,
        source=CouponSource.CLAIM,
        check_audience=True,
        now=now or utcnow(),
    )


async def issue_bought_coupon(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer_id: uuid.UUID,
    customer_id: uuid.UUID,
    now: datetime | None = None,
) -> Coupon:
    """A coupon the customer bought with points (a catalogue item): consent, stock and limit
    hold as for a claim; the audience does not (the catalogue is open to all)."""
    return await _issue_to_customer(
        session,
        tenant_id=tenant_id,
        offer_id=offer_id,
        customer_id=customer_id,
        source=CouponSource.CATALOGUE,
        check_audience=False,
        now=now or utcnow(),
    )


async def issue_coupons(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    count: int = 1,
    now: datetime | None = None,
) -> list[Coupon]:
    """Staff issue a coupon to a customer (consent, stock and limit hold; the audience is the
    staff's call), or ``count`` anonymous codes without a customer (stock holds)."""
    now = now or utcnow()
    if customer_id is not None:
        if count != 1:
            raise BadUserInput(
                "input.count: one coupon per customer at a time", field="input.count"
            )
        coupon = await _issue_to_customer(
            session,
            tenant_id=tenant_id,
            offer_id=offer_id,
            customer_id=customer_id,
            source=CouponSource.STAFF,
            check_audience=False,
            now=now,
        )
        return [coupon]
    if not 1 <= count <= MAX_BULK:
        raise BadUserInput(f"input.count: must be between 1 and {MAX_BULK}", field="input.count")
    offer = await get_offer(session=session, tenant_id=tenant_id, offer_id=offer_id)
    _check_open(offer, now)
    await _count_against_stock(session, offer, count, now)
    return await _write_coupons(
        session,
        offer,
        count=count,
        customer_id=None,
        source=CouponSource.BULK,
        grant_id=None,
        now=now,
    )


async def grant_coupon(
    *, session: AsyncSession, tenant_id: uuid.UUID, grant: Grant, now: datetime | None = None
) -> CouponGrant:
    """Issue a granted coupon once per ``grant_id``; a grant that cannot be honoured (no
    consent, out of stock, offer over...) is recorded as failed with the reason, for staff."""
    now = now or utcnow()
    # Two deliveries of one grant (even as two events) wait for each other here.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"rewards.coupon_grant:{tenant_id}:{grant.grant_id}"},
    )
    existing = await session.get(CouponGrant, (tenant_id, grant.grant_id), populate_existing=True)
    if existing is not None:
        return existing
    coupon: Coupon | None = None
    reason: str | None = None
    try:
        async with session.begin_nested():
            coupon = await _issue_to_customer(
                session,
                tenant_id=tenant_id,
                offer_id=grant.offer_id,
                customer_id=grant.customer_id,
                source=CouponSource.GRANT,
                check_audience=False,
                grant_id=grant.grant_id,
                now=now,
            )
    except CrmError as refused:
        reason = refused.message
    record = CouponGrant(
        tenant_id=tenant_id,
        grant_id=grant.grant_id,
        customer_id=grant.customer_id,
        offer_id=grant.offer_id,
        source=grant.source,
        source_event_id=grant.source_event_id,
        status=(GrantStatus.ISSUED if coupon else GrantStatus.FAILED).value,
        reason=reason,
        coupon_id=coupon.id if coupon else None,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    if reason is not None:
        await record_event(
            session,
            CouponGrantFailed(
                grant_id=grant.grant_id,
                customer_id=grant.customer_id,
                offer_id=grant.offer_id,
                reason=reason,
            ),
            tenant_id=tenant_id,
            subject=str(grant.customer_id),
        )
    return record


async def list_grants(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    status: GrantStatus | None,
    limit: int,
    position: tuple[datetime, uuid.UUID] | None = None,
) -> list[CouponGrant]:
    """The tenant's coupon grants, newest first."""
    query = select(CouponGrant).where(CouponGrant.tenant_id == tenant_id)
    if status is not None:
        query = query.where(CouponGrant.status == status.value)
    page = keyset_page(
        query,
        col(CouponGrant.created_at),
        col(CouponGrant.grant_id),
        position,
        limit=limit,
        newest_first=True,
    )
    return list((await session.exec(page)).all())


# Redeeming and reading --------------------------------------------------------------------


def _code(text_: str) -> str:
    found = codes.canonical(text_)
    if found is None:
        # A malformed code is as unknown as a well-formed one that does not exist.
        raise NotFound("input.code: no such coupon", field="input.code")
    return found


async def redeem_coupon(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    code: str,
    order_id: str,
    actor: str,
    now: datetime | None = None,
) -> Coupon:
    """Redeem a coupon at checkout, exactly once: CONFLICT if it was redeemed already,
    BAD_USER_INPUT if it expired or its offer ended, NOT_FOUND for a code the tenant lacks."""
    now = now or utcnow()
    order = order_id.strip()
    if not 1 <= len(order) <= MAX_ORDER_ID:
        raise BadUserInput(f"input.orderId: 1 to {MAX_ORDER_ID} characters", field="input.orderId")
    canonical = _code(code)
    live_offers = select(Offer.id).where(
        Offer.tenant_id == tenant_id, Offer.status == OfferStatus.PUBLISHED.value
    )
    redeemed = await session.execute(
        update(Coupon)
        .where(
            col(Coupon.tenant_id) == tenant_id,
            col(Coupon.code) == canonical,
            col(Coupon.redeemed_at).is_(None),
            or_(col(Coupon.expires_at).is_(None), col(Coupon.expires_at) > now),
            col(Coupon.offer_id).in_(live_offers),
        )
        .values(redeemed_at=now, order_id=order, redeemed_by=actor)
        .returning(col(Coupon.id))
        .execution_options(synchronize_session=False)
    )
    coupon_id = redeemed.scalar_one_or_none()
    coupon = (
        await session.exec(
            select(Coupon)
            .where(Coupon.tenant_id == tenant_id, Coupon.code == canonical)
            .execution_options(populate_existing=True)
        )
    ).first()
    if coupon is None:
        raise NotFound("input.code: no such coupon", field="input.code")
    if coupon_id is None:
        if coupon.redeemed_at is not None:
            raise Conflict(
                f"input.code: this coupon was already redeemed at {coupon.redeemed_at.isoformat()}",
                field="input.code",
            )
        raise BadUserInput(
            "input.code: this coupon has expired or its offer has ended", field="input.code"
        )
    await record_event(
        session,
        CouponRedeemed(
            coupon_id=coupon.id,
            offer_id=coupon.offer_id,
            customer_id=coupon.customer_id,
            order_id=order,
            redeemed_at=now,
        ),
        tenant_id=tenant_id,
        subject=str(coupon.customer_id or coupon.id),
    )
    return coupon


def _status_filter(status: CouponStatus, now: datetime) -> Any:
    unexpired = or_(col(Coupon.expires_at).is_(None), col(Coupon.expires_at) > now)
    if status is CouponStatus.REDEEMED:
        return col(Coupon.redeemed_at).is_not(None)
    if status is CouponStatus.AVAILABLE:
        return col(Coupon.redeemed_at).is_(None) & unexpired
    return col(Coupon.redeemed_at).is_(None) & ~unexpired


async def coupons_of(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    status: CouponStatus | None,
    limit: int,
    position: tuple[datetime, uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[Coupon]:
    """The customer's coupons, newest first (of one status, or all)."""
    found = await customers_coupons(
        session=session,
        tenant_id=tenant_id,
        customer_ids=[customer_id],
        status=status,
        limit=limit,
        position=position,
        now=now,
    )
    return found.get(customer_id, [])


async def customers_coupons(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    status: CouponStatus | None,
    limit: int,
    position: tuple[datetime, uuid.UUID] | None = None,
    now: datetime | None = None,
) -> dict[uuid.UUID, list[Coupon]]:
    """Each customer's coupons, newest first (of one status, or all); one query for all."""
    query = select(Coupon).where(Coupon.tenant_id == tenant_id)
    if status is not None:
        query = query.where(_status_filter(status, now or utcnow()))
    return await keyset_pages(
        session,
        Coupon,
        query,
        owner=col(Coupon.customer_id),
        owners=customer_ids,
        at=col(Coupon.issued_at),
        id_=col(Coupon.id),
        position=position,
        limit=limit,
        newest_first=True,
    )


# The audience projection ------------------------------------------------------------------


async def project_audience(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    values: dict[str, Any],
    stamp: str,
    at: datetime,
) -> None:
    """Set part of a customer's audience facts, unless a later event already set it.

    ``stamp`` is the column holding the time of that part (``segment_at``, ``tier_at``,
    ``influence_at``); ``values`` are that part's columns.
    """
    members = AudienceMember.__table__  # type: ignore[attr-defined]
    statement = insert(AudienceMember).values(
        tenant_id=tenant_id, customer_id=customer_id, **values, **{stamp: at}
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "customer_id"],
            set_={name: statement.excluded[name] for name in (*values, stamp)},
            where=or_(members.c[stamp].is_(None), members.c[stamp] <= statement.excluded[stamp]),
        )
    )


async def forget_audience(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Drop what is known of the customers' segment, tier and influence (erasure)."""
    await session.execute(
        text(
            "DELETE FROM rewards.audience_members WHERE tenant_id = :t AND customer_id = ANY(:ids)"
        ),
        {"t": tenant_id, "ids": list(customer_ids)},
    )


async def export_customer(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, Any]:
    """The customer's coupons and audience facts as plain JSON (for the privacy export)."""
    coupons = await session.exec(
        select(Coupon)
        .where(Coupon.tenant_id == tenant_id, Coupon.customer_id == customer_id)
        .order_by(col(Coupon.issued_at), col(Coupon.id))
    )
    member = await audience_member(session, tenant_id, customer_id)
    now = utcnow()
    return {
        "coupons": [
            {
                "id": str(c.id),
                "offer_id": str(c.offer_id),
                "code": c.code,
                "status": c.status(now).value,
                "issued_at": c.issued_at.isoformat(),
                "redeemed_at": c.redeemed_at.isoformat() if c.redeemed_at else None,
            }
            for c in coupons.all()
        ],
        "audience": (
            {
                "segment": member.segment,
                "tier": member.tier,
                "influencer": member.influencer,
                "advocate": member.advocate,
            }
            if member
            else None
        ),
    }
