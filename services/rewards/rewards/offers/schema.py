"""Offers and coupons in the rewards subgraph: managing offers, claiming, issuing, redeeming."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared import audit
from crm_shared.auth import Permission
from crm_shared.db import utcnow
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.pagination import (
    Connection,
    check_first,
    connection,
    decode_cursor,
    encode_cursor,
)
from crm_shared.resolvers import needs, page
from crm_shared.validation import parse_id, validated
from rewards.offers import service
from rewards.offers.models import (
    Coupon,
    CouponGrant,
    CouponSource,
    CouponStatus,
    GrantStatus,
    Offer,
    OfferCreate,
    OfferKind,
    OfferStatus,
)

# The model enums become GraphQL enums.
strawberry.enum(OfferKind, name="OfferKind")
strawberry.enum(OfferStatus, name="OfferStatus")
strawberry.enum(CouponStatus, name="CouponStatus")
strawberry.enum(CouponSource, name="CouponSource")
strawberry.enum(GrantStatus, name="CouponGrantStatus")


@strawberry.type
class OfferAudience:
    """Whom an offer is aimed at (any one match suffices); all empty: every customer who
    consents to marketing."""

    segments: list[str]
    tiers: list[str] = strawberry.field(description="Tier names or tier ids.")
    influencers: bool
    advocates: bool


@strawberry.type(name="Offer")
class OfferType:
    """A discount, an amount off or a free item, for a time, within a stock."""

    id: strawberry.ID
    name: str
    description: str
    kind: OfferKind
    percent_off: int | None
    amount_off: Decimal | None
    currency: str | None
    free_item: str | None
    status: OfferStatus
    starts_at: datetime | None
    ends_at: datetime | None
    flash: bool
    stock: int | None = strawberry.field(description="Coupons there are in all; null: no limit.")
    issued: int = strawberry.field(description="Coupons issued so far.")
    per_customer_limit: int
    audience: OfferAudience
    created_at: datetime
    published_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def from_model(cls, offer: Offer) -> OfferType:
        return cls(
            id=strawberry.ID(str(offer.id)),
            name=offer.name,
            description=offer.description,
            kind=OfferKind(offer.kind),
            percent_off=offer.percent_off,
            amount_off=offer.amount_off,
            currency=offer.currency,
            free_item=offer.free_item,
            status=OfferStatus(offer.status),
            starts_at=offer.starts_at,
            ends_at=offer.ends_at,
            flash=offer.flash,
            stock=offer.stock,
            issued=offer.issued,
            per_customer_limit=offer.per_customer_limit,
            audience=OfferAudience(
                segments=list(offer.target_segments),
                tiers=list(offer.target_tiers),
                influencers=offer.target_influencers,
                advocates=offer.target_advocates,
            ),
            created_at=offer.created_at,
            published_at=offer.published_at,
            ended_at=offer.ended_at,
        )


async def _offers(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, OfferType | None]:
    found = await service.get_offers(session=session, tenant_id=tenant_id, ids=ids)
    return {key: OfferType.from_model(offer) for key, offer in found.items()}


def offer_loader(info: CrmInfo) -> DataLoader[uuid.UUID, OfferType | None]:
    """The request's batch loader of the caller's tenant's offers."""
    return keyed_loader(info, "offers", _offers, None)


def coupons_loader(
    info: CrmInfo,
    status: CouponStatus | None,
    limit: int,
    position: tuple[datetime, uuid.UUID] | None,
    now: datetime,
) -> DataLoader[uuid.UUID, list[Coupon]]:
    """The request's batch loader of customers' coupons: one page, the same for each."""

    async def fetch(
        session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, list[Coupon]]:
        return await service.customers_coupons(
            session=session,
            tenant_id=tenant_id,
            customer_ids=ids,
            status=status,
            limit=limit,
            position=position,
            now=now,
        )

    return keyed_loader(info, f"coupons:{status}:{limit}:{position}", fetch, [])


def eligible_loader(info: CrmInfo, limit: int) -> DataLoader[uuid.UUID, list[OfferType]]:
    """The request's batch loader of the offers each customer may claim (up to ``limit``)."""

    async def fetch(
        session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, list[OfferType]]:
        found = await service.eligible_offers_of(
            session=session, tenant_id=tenant_id, customer_ids=ids, limit=limit
        )
        return {key: [OfferType.from_model(o) for o in offers] for key, offers in found.items()}

    return keyed_loader(info, f"eligible_offers:{limit}", fetch, [])


@strawberry.type(name="Coupon")
class CouponType:
    """A single-use code for an offer, held by a customer or handed out anonymously."""

    id: strawberry.ID
    code: str = strawberry.field(
        description="Shown as XXXX-XXXX-XXXX; case and dashes are ignored."
    )
    offer_id: strawberry.ID
    customer_id: strawberry.ID | None
    source: CouponSource
    status: CouponStatus
    issued_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None
    order_id: str | None

    @strawberry.field(description="The coupon's offer.")
    async def offer(self, info: CrmInfo) -> OfferType | None:
        return await offer_loader(info).load(uuid.UUID(self.offer_id))

    @classmethod
    def from_model(cls, coupon: Coupon, now: datetime | None = None) -> CouponType:
        return cls(
            id=strawberry.ID(str(coupon.id)),
            code=coupon.code,
            offer_id=strawberry.ID(str(coupon.offer_id)),
            customer_id=strawberry.ID(str(coupon.customer_id)) if coupon.customer_id else None,
            source=CouponSource(coupon.source),
            status=coupon.status(now or utcnow()),
            issued_at=coupon.issued_at,
            expires_at=coupon.expires_at,
            redeemed_at=coupon.redeemed_at,
            order_id=coupon.order_id,
        )


@strawberry.type(name="CouponGrant")
class CouponGrantType:
    """A coupon granted by a rule or a referral milestone, and what came of it."""

    grant_id: strawberry.ID
    customer_id: strawberry.ID
    offer_id: strawberry.ID
    source: str
    source_event_id: str | None
    status: GrantStatus
    reason: str | None = strawberry.field(description="Why a failed grant could not be issued.")
    coupon_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def from_model(cls, grant: CouponGrant) -> CouponGrantType:
        return cls(
            grant_id=strawberry.ID(str(grant.grant_id)),
            customer_id=strawberry.ID(str(grant.customer_id)),
            offer_id=strawberry.ID(str(grant.offer_id)),
            source=grant.source,
            source_event_id=grant.source_event_id,
            status=GrantStatus(grant.status),
            reason=grant.reason,
            coupon_id=strawberry.ID(str(grant.coupon_id)) if grant.coupon_id else None,
            created_at=grant.created_at,
        )


@strawberry.type
class CustomerOffers:
    """The Customer entity's offer fields (composed into ``Customer`` in rewards/schema.py)."""

    id: strawberry.ID

    @strawberry.field(
        description="The customer's coupons, newest first.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def coupons(
        self,
        info: CrmInfo,
        status: CouponStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[CouponType]:
        customer_id = parse_id(self.id, field="id")
        limit = check_first(first)
        now = utcnow()
        position = decode_cursor(after) if after else None
        # One query for every customer of the request asking for the same page.
        rows = await coupons_loader(info, status, limit + 1, position, now).load(customer_id)
        return connection(
            rows,
            limit,
            cursor=lambda c: encode_cursor(c.issued_at, c.id),
            node=lambda c: CouponType.from_model(c, now),
        )

    @strawberry.field(
        description="Open offers the customer may claim now (none without marketing consent), "
        "ending soonest first.",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def eligible_offers(self, info: CrmInfo, first: int = 20) -> list[OfferType]:
        customer_id = parse_id(self.id, field="id")
        return await eligible_loader(info, check_first(first)).load(customer_id)


@strawberry.type
class Query:
    @strawberry.field(
        description="The tenant's offers, newest first (rewards:read, staff).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def offers(
        self,
        info: CrmInfo,
        status: OfferStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[OfferType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_offers(
                session=session, tenant_id=tenant_id, status=status, limit=limit, position=position
            ),
            cursor=lambda o: encode_cursor(o.created_at, o.id),
            node=OfferType.from_model,
        )

    @strawberry.field(
        description="One offer, or null (rewards:read, staff).",
        extensions=[needs(Permission.REWARDS_READ)],
    )
    async def offer(self, info: CrmInfo, id: strawberry.ID) -> OfferType | None:
        return await offer_loader(info).load(parse_id(id, field="id"))

    @strawberry.field(
        description="Coupon grants (from rules and referral milestones), newest first; "
        "status FAILED lists those that could not be issued, with the reason (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def coupon_grants(
        self,
        info: CrmInfo,
        status: GrantStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[CouponGrantType]:
        return await page(
            info,
            first,
            after,
            lambda session, tenant_id, limit, position: service.list_grants(
                session=session, tenant_id=tenant_id, status=status, limit=limit, position=position
            ),
            cursor=lambda g: encode_cursor(g.created_at, g.grant_id),
            node=CouponGrantType.from_model,
        )


@strawberry.input(name="OfferAudienceInput")
class OfferAudienceInput:
    segments: list[str] = strawberry.field(default_factory=list)
    tiers: list[str] = strawberry.field(
        default_factory=list, description="Tier names (case-insensitive) or tier ids."
    )
    influencers: bool = False
    advocates: bool = False


@strawberry.input
class CreateOfferInput:
    name: str
    description: str = ""
    kind: OfferKind
    percent_off: int | None = strawberry.field(
        default=None, description="For a percentage offer: 1..100."
    )
    amount_off: Decimal | None = strawberry.field(
        default=None, description="For an amount offer, with currency."
    )
    currency: str | None = None
    free_item: str | None = strawberry.field(default=None, description="For a free item offer.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    flash: bool = strawberry.field(
        default=False, description="A short (at most 72 hours), limited (stock) offer."
    )
    stock: int | None = strawberry.field(default=None, description="Null: no limit.")
    per_customer_limit: int = 1
    audience: OfferAudienceInput | None = None


@strawberry.input
class ClaimOfferInput:
    offer_id: strawberry.ID
    customer_id: strawberry.ID


@strawberry.input
class IssueCouponInput:
    offer_id: strawberry.ID
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Null: `count` anonymous codes (at most 1000)."
    )
    count: int = 1


@strawberry.input
class RedeemCouponInput:
    code: str
    order_id: str = strawberry.field(description="The order the coupon is used for.")


def _offer_data(input: CreateOfferInput) -> dict[str, Any]:
    data = {
        name: value
        for name, value in vars(input).items()
        if name != "audience" and value is not strawberry.UNSET
    }
    if input.audience is not None:
        data["audience"] = vars(input.audience)
    return data


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="A new draft offer (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def create_offer(self, info: CrmInfo, input: CreateOfferInput) -> OfferType:
        principal = info.context.principal
        data = validated(OfferCreate, _offer_data(input))
        async with info.context.transaction() as session:
            offer = await service.create_offer(
                session=session, tenant_id=principal.tenant_id, data=data, actor=principal.actor
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="offer.created",
                record_type="offer",
                record_id=offer.id,
                details={"kind": offer.kind, "stock": offer.stock},
            )
        return OfferType.from_model(offer)

    @strawberry.mutation(
        description="Publish a draft offer (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def publish_offer(self, info: CrmInfo, offer_id: strawberry.ID) -> OfferType:
        principal = info.context.principal
        offer_uuid = parse_id(offer_id, field="offerId")
        async with info.context.transaction() as session:
            offer = await service.publish_offer(
                session=session, tenant_id=principal.tenant_id, offer_id=offer_uuid
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="offer.published",
                record_type="offer",
                record_id=offer.id,
            )
        return OfferType.from_model(offer)

    @strawberry.mutation(
        description="End an offer: nothing more is issued, unredeemed coupons expire "
        "(rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def end_offer(self, info: CrmInfo, offer_id: strawberry.ID) -> OfferType:
        principal = info.context.principal
        offer_uuid = parse_id(offer_id, field="offerId")
        async with info.context.transaction() as session:
            offer = await service.end_offer(
                session=session, tenant_id=principal.tenant_id, offer_id=offer_uuid
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="offer.ended",
                record_type="offer",
                record_id=offer.id,
                details={"issued": offer.issued},
            )
        return OfferType.from_model(offer)

    @strawberry.mutation(
        description="Claim a coupon of an open offer aimed at the customer (rewards:redeem; a "
        "customer token only for itself).",
        extensions=[needs(Permission.REWARDS_REDEEM, customer="input.customer_id")],
    )
    async def claim_offer(self, info: CrmInfo, input: ClaimOfferInput) -> CouponType:
        customer_id = parse_id(input.customer_id, field="input.customerId")
        principal = info.context.principal
        offer_id = parse_id(input.offer_id, field="input.offerId")
        async with info.context.transaction() as session:
            coupon = await service.claim_offer(
                session=session,
                tenant_id=principal.tenant_id,
                offer_id=offer_id,
                customer_id=customer_id,
            )
        return CouponType.from_model(coupon)

    @strawberry.mutation(
        description="Issue a coupon to a customer, or anonymous codes (rewards:manage).",
        extensions=[needs(Permission.REWARDS_MANAGE)],
    )
    async def issue_coupon(self, info: CrmInfo, input: IssueCouponInput) -> list[CouponType]:
        principal = info.context.principal
        offer_id = parse_id(input.offer_id, field="input.offerId")
        customer_id = (
            parse_id(input.customer_id, field="input.customerId") if input.customer_id else None
        )
        async with info.context.transaction() as session:
            coupons = await service.issue_coupons(
                session=session,
                tenant_id=principal.tenant_id,
                offer_id=offer_id,
                customer_id=customer_id,
                count=input.count,
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="coupon.issued",
                record_type="offer",
                record_id=offer_id,
                details={
                    "customer_id": str(customer_id) if customer_id else None,
                    "count": len(coupons),
                },
            )
        return [CouponType.from_model(coupon) for coupon in coupons]

    @strawberry.mutation(
        description="Redeem a coupon at checkout, exactly once (rewards:redeem; partners and "
        "staff, not customer tokens).",
        extensions=[needs(Permission.REWARDS_REDEEM)],
    )
    async def redeem_coupon(self, info: CrmInfo, input: RedeemCouponInput) -> CouponType:
        principal = info.context.principal
        async with info.context.transaction() as session:
            coupon = await service.redeem_coupon(
                session=session,
                tenant_id=principal.tenant_id,
                code=input.code,
                order_id=input.order_id,
                actor=principal.actor,
            )
            await audit.record_staff_action(
                session=session,
                principal=principal,
                action="coupon.redeemed",
                record_type="coupon",
                record_id=coupon.id,
                details={"offer_id": str(coupon.offer_id)},
            )
        return CouponType.from_model(coupon)
