"""Referrals: each customer's code, who referred whom, the tenant's program, fraud evidence."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field, utcnow


class ReferralStatus(StrEnum):
    """Where a referral is; ``qualified`` is passed through on the way to ``rewarded``."""

    ATTRIBUTED = "attributed"  # the referred customer registered with the code
    HELD = "held"  # qualified, but a fraud check failed: waits for staff review
    REWARDED = "rewarded"  # qualified and paid (both sides)
    UNQUALIFIED = "unqualified"  # the qualifying purchase was refunded; rewards reversed
    REJECTED = "rejected"  # staff rejected it (clawed back if it had been paid)


class QualifyingKind(StrEnum):
    """What qualifies a referral: a purchase (of any kind, or of one kind), or the referred
    customer's sign-up itself ("$20 when your referral signs up")."""

    ANY = "any"
    PURCHASE = "purchase"
    SUBSCRIPTION = "subscription"
    SIGNUP = "signup"


class HoldReason(StrEnum):
    """Why a referral was held for review."""

    SELF_REFERRAL = "self_referral"
    SHARED_CONTACT_POINT = "shared_contact_point"
    VELOCITY = "velocity"


class Milestone(BaseModel):
    """``referrals`` rewarded referrals grant the referrer a coupon of ``offer_id``, once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = PydanticField(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    referrals: int = PydanticField(ge=1, le=10_000)
    offer_id: uuid.UUID


class ProgramSettings(BaseModel):
    """A tenant's referral program (defaults apply until staff change it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    qualifying_kind: QualifyingKind = QualifyingKind.ANY
    min_amount_cents: int = PydanticField(default=0, ge=0, le=100_000_000_000)
    referrer_points: int = PydanticField(default=500, ge=0, le=1_000_000)
    referred_points: int = PydanticField(default=250, ge=0, le=1_000_000)
    # A coupon of this offer on top of (or instead of) the points, granted through offers.
    referrer_offer_id: uuid.UUID | None = None
    referred_offer_id: uuid.UUID | None = None
    milestones: list[Milestone] = PydanticField(default_factory=list, max_length=20)
    # More than ``velocity_limit`` attributions to one referrer within the window: held.
    velocity_limit: int = PydanticField(default=5, ge=1, le=10_000)
    velocity_window_hours: int = PydanticField(default=24, ge=1, le=24 * 365)
    # Where a referral link points (the code is appended); None: the service's default.
    link_base: str | None = PydanticField(default=None, max_length=300, pattern=r"^https://\S+$")

    @field_validator("milestones")
    @classmethod
    def _distinct(cls, value: list[Milestone]) -> list[Milestone]:
        if len({m.id for m in value}) != len(value):
            raise ValueError("milestone ids must be distinct")
        return value


class ReferralProgram(SQLModel, table=True):
    """The tenant's program as staff set it (``settings``: ProgramSettings as JSON)."""

    __tablename__ = "referral_programs"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    settings: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    updated_by: str
    updated_at: datetime = created_at_field()


class ReferralCode(SQLModel, table=True):
    """A customer's code: made once, never changes."""

    __tablename__ = "referral_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="referral_codes_tenant_code"),
        {"schema": "rewards"},
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    code: str
    created_at: datetime = created_at_field()


class Referral(SQLModel, table=True):
    """The referred customer registered with the referrer's code (once per referred customer)."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "referred_id", name="referrals_tenant_referred"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    referrer_id: uuid.UUID
    referred_id: uuid.UUID
    code: str
    status: str = ReferralStatus.ATTRIBUTED.value
    hold_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    attributed_at: datetime = created_at_field()
    qualifying_purchase_id: uuid.UUID | None = None
    qualified_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    rewarded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # The ledger entries that paid each side (None: nothing paid, or reversed since).
    referrer_entry_id: uuid.UUID | None = None
    referred_entry_id: uuid.UUID | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    review_note: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ContactFingerprint(SQLModel, table=True):
    """A keyed hash of a verified contact point identity saw on a customer (never the value)."""

    __tablename__ = "contact_fingerprints"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    fingerprint: str = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    seen_at: datetime = created_at_field()


class MilestoneGrant(SQLModel, table=True):
    """A milestone coupon granted to a referrer (once per milestone)."""

    __tablename__ = "referral_milestone_grants"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    referrer_id: uuid.UUID = Field(primary_key=True)
    milestone_id: str = Field(primary_key=True)
    grant_id: uuid.UUID
    offer_id: uuid.UUID
    granted_at: datetime = created_at_field()
