"""Offers, the coupons issued for them, coupon grants and the audience offers are aimed at."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import Column, DateTime, Numeric, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

# A flash offer is short and limited: a window of at most this long, and a stock.
FLASH_MAX_WINDOW = timedelta(hours=72)
MAX_STOCK = 10_000_000
MAX_TARGETS = 50


class OfferKind(StrEnum):
    """What the coupon is worth at checkout."""

    PERCENTAGE = "percentage"
    AMOUNT = "amount"
    FREE_ITEM = "free_item"


class OfferStatus(StrEnum):
    """draft → published → ended (a draft may also be ended without ever being published)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    ENDED = "ended"


class CouponSource(StrEnum):
    """How a coupon came to exist."""

    CLAIM = "claim"  # the customer claimed it
    STAFF = "staff"  # staff issued it to a customer
    GRANT = "grant"  # a rule or a referral milestone granted it (rewards.coupon.granted.v1)
    BULK = "bulk"  # an anonymous code, handed out by the brand
    CATALOGUE = "catalogue"  # bought with points (a catalogue item that is a coupon)


class CouponStatus(StrEnum):
    """A coupon as its holder sees it."""

    AVAILABLE = "available"
    REDEEMED = "redeemed"
    EXPIRED = "expired"  # past its offer's end, or the offer was ended


class GrantStatus(StrEnum):
    ISSUED = "issued"
    FAILED = "failed"


class Offer(SQLModel, table=True):
    __tablename__ = "offers"
    __table_args__ = {"schema": "rewards"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    name: str
    description: str = ""
    kind: str
    percent_off: int | None = None
    amount_off: Decimal | None = Field(default=None, sa_column=Column(Numeric(12, 2)))
    currency: str | None = None
    free_item: str | None = None
    status: str = OfferStatus.DRAFT.value
    starts_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    ends_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    flash: bool = False
    # None: unlimited. ``issued`` only grows, by conditional updates (see service.py).
    stock: int | None = None
    issued: int = 0
    per_customer_limit: int = 1
    target_segments: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String()), nullable=False)
    )
    target_tiers: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String()), nullable=False)
    )
    target_influencers: bool = False
    target_advocates: bool = False
    created_by: str
    created_at: datetime = created_at_field()
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))

    @property
    def targeted(self) -> bool:
        """Whether the offer is aimed at someone (otherwise: every consenting customer)."""
        return bool(
            self.target_segments
            or self.target_tiers
            or self.target_influencers
            or self.target_advocates
        )


class Coupon(SQLModel, table=True):
    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="coupons_tenant_code"),
        UniqueConstraint("tenant_id", "grant_id", name="coupons_tenant_grant"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    offer_id: uuid.UUID = Field(foreign_key="rewards.offers.id")
    code: str
    customer_id: uuid.UUID | None = None
    source: str
    grant_id: uuid.UUID | None = None
    issued_at: datetime = created_at_field()
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    redeemed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    order_id: str | None = None
    redeemed_by: str | None = None

    def status(self, now: datetime) -> CouponStatus:
        """Available, redeemed or expired at ``now``."""
        if self.redeemed_at is not None:
            return CouponStatus.REDEEMED
        if self.expires_at is not None and self.expires_at <= now:
            return CouponStatus.EXPIRED
        return CouponStatus.AVAILABLE


class OfferClaim(SQLModel, table=True):
    """How many coupons of an offer a customer holds (bounded by the offer's limit)."""

    __tablename__ = "offer_claims"
    __table_args__ = {"schema": "rewards"}

    offer_id: uuid.UUID = Field(primary_key=True, foreign_key="rewards.offers.id")
    customer_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    count: int


class CouponGrant(SQLModel, table=True):
    """A coupon granted by an event, and what came of it (issued, or failed with a reason)."""

    __tablename__ = "coupon_grants"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    grant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID
    offer_id: uuid.UUID
    source: str
    source_event_id: str | None = None
    status: str
    reason: str | None = None
    coupon_id: uuid.UUID | None = Field(default=None, foreign_key="rewards.coupons.id")
    created_at: datetime = created_at_field()


class AudienceMember(SQLModel, table=True):
    """What offers can be aimed at about one customer: segment, tier, influence."""

    __tablename__ = "audience_members"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    segment: str | None = None
    segment_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    tier: str | None = None
    tier_id: str | None = None
    tier_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    influencer: bool = False
    advocate: bool = False
    influence_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


def in_audience(offer: Offer, member: AudienceMember | None) -> bool:
    """Whether a customer is among those the offer is aimed at (any one target suffices)."""
    if not offer.targeted:
        return True
    if member is None:
        return False
    tiers = {t.casefold() for t in offer.target_tiers}
    return bool(
        (member.segment is not None and member.segment in offer.target_segments)
        or (member.tier is not None and member.tier.casefold() in tiers)
        or (member.tier_id is not None and member.tier_id.casefold() in tiers)
        or (offer.target_influencers and member.influencer)
        or (offer.target_advocates and member.advocate)
    )


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _targets(value: list[str]) -> list[str]:
    cleaned = sorted({item.strip() for item in value if item.strip()})
    if len(cleaned) > MAX_TARGETS:
        raise ValueError(f"at most {MAX_TARGETS} entries")
    return cleaned


# The participation segments engagement announces (engagement.segment.changed.v1): an offer
# aimed at another name would silently reach nobody.
SEGMENTS = ("creator", "occasional", "observer", "inactive")


class OfferAudience(BaseModel):
    """Whom an offer is aimed at; all empty: every customer who consents to marketing."""

    segments: list[str] = PydanticField(default_factory=list)
    tiers: list[str] = PydanticField(default_factory=list)
    influencers: bool = False
    advocates: bool = False

    _clean = field_validator("segments", "tiers")(_targets)

    @field_validator("segments")
    @classmethod
    def _known_segments(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SEGMENTS))
        if unknown:
            raise ValueError(f"unknown segment {unknown[0]!r}; one of {', '.join(SEGMENTS)}")
        return value


class OfferCreate(BaseModel):
    """A new offer; the worth fields must match ``kind`` and nothing else may be set."""

    name: str = PydanticField(min_length=1, max_length=200)
    description: str = PydanticField(default="", max_length=2000)
    kind: OfferKind
    percent_off: int | None = PydanticField(default=None, ge=1, le=100, validate_default=True)
    amount_off: Decimal | None = PydanticField(
        default=None, gt=0, max_digits=12, decimal_places=2, validate_default=True
    )
    currency: str | None = PydanticField(default=None, validate_default=True)
    free_item: str | None = PydanticField(default=None, max_length=200, validate_default=True)
    starts_at: datetime | None = None
    ends_at: datetime | None = PydanticField(default=None, validate_default=True)
    stock: int | None = PydanticField(default=None, ge=1, le=MAX_STOCK)
    per_customer_limit: int = PydanticField(default=1, ge=1, le=1000)
    flash: bool = PydanticField(default=False, validate_default=True)
    audience: OfferAudience = PydanticField(default_factory=OfferAudience)

    _strip_text = field_validator("name", "description", "free_item", mode="before")(_strip)

    @staticmethod
    def _for_kind(value: Any, info: ValidationInfo, kind: OfferKind) -> Any:
        if info.data.get("kind") == kind and value is None:
            raise ValueError(f"required for a {kind.value} offer")
        if info.data.get("kind") not in (kind, None) and value is not None:
            raise ValueError(f"only for a {kind.value} offer")
        return value

    @field_validator("percent_off")
    @classmethod
    def _percent(cls, value: int | None, info: ValidationInfo) -> int | None:
        result: int | None = cls._for_kind(value, info, OfferKind.PERCENTAGE)
        return result

    @field_validator("amount_off")
    @classmethod
    def _amount(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        result: Decimal | None = cls._for_kind(value, info, OfferKind.AMOUNT)
        return result

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any, info: ValidationInfo) -> Any:
        value = cls._for_kind(value, info, OfferKind.AMOUNT)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
            raise ValueError("an ISO 4217 code of three letters (e.g. EUR)")
        return value.upper()

    @field_validator("free_item")
    @classmethod
    def _free_item(cls, value: str | None, info: ValidationInfo) -> str | None:
        result: str | None = cls._for_kind(value or None, info, OfferKind.FREE_ITEM)
        return result

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. 2026-12-24T18:00:00Z)")
        return value

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("starts_at")
        if value is not None and starts is not None and value <= starts:
            raise ValueError("must be after startsAt")
        return value

    @field_validator("flash")
    @classmethod
    def _flash(cls, value: bool, info: ValidationInfo) -> bool:
        if not value:
            return value
        starts, ends = info.data.get("starts_at"), info.data.get("ends_at")
        if starts is None or ends is None or info.data.get("stock") is None:
            raise ValueError("a flash offer needs startsAt, endsAt and a stock")
        if ends - starts > FLASH_MAX_WINDOW:
            hours = int(FLASH_MAX_WINDOW.total_seconds() // 3600)
            raise ValueError(f"a flash offer lasts at most {hours} hours")
        return value
