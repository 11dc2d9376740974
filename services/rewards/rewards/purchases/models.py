"""Purchases and refunds partners report, and the idempotency keys of their requests."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

MAX_AMOUNT_CENTS = 100_000_000_000  # a billion in any currency: anything above is a typo
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# A partner's clock may run a little ahead; a purchase further in the future is a mistake.
CLOCK_SKEW = timedelta(minutes=10)


class PurchaseKind(StrEnum):
    """A one-off purchase or a subscription (referral programs may qualify only the latter)."""

    PURCHASE = "purchase"
    SUBSCRIPTION = "subscription"


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _not_in_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


class PurchaseReport(BaseModel):
    """A purchase as a partner reports it (HTTP body, GraphQL input, partner event)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: str = PydanticField(min_length=1, max_length=200)
    customer_id: uuid.UUID
    amount_cents: int = PydanticField(gt=0, le=MAX_AMOUNT_CENTS)
    currency: str
    occurred_at: AwareDatetime
    kind: PurchaseKind = PurchaseKind.PURCHASE

    _order = field_validator("order_id", mode="before")(_strip)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().upper()
            if not _CURRENCY.fullmatch(value):
                raise ValueError("not an ISO 4217 currency code (e.g. EUR)")
        return value

    _past = field_validator("occurred_at")(_not_in_future)


class RefundReport(BaseModel):
    """A refund of (part of) a reported purchase; without ``amount_cents``, all that is left."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: str = PydanticField(min_length=1, max_length=200)
    amount_cents: int | None = PydanticField(default=None, gt=0, le=MAX_AMOUNT_CENTS)
    occurred_at: AwareDatetime
    reason: str | None = PydanticField(default=None, max_length=500)

    _order = field_validator("order_id", mode="before")(_strip)
    _past = field_validator("occurred_at")(_not_in_future)


class Purchase(SQLModel, table=True):
    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", name="purchases_tenant_order"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    # The partner's own order id: one purchase per order and tenant.
    order_id: str
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Sum of the purchase's refunds; never more than ``amount_cents`` (a CHECK constraint).
    refunded_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    currency: str
    kind: str
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    # Who reported it (``client:<id>``, ``staff:<id>``, ``event:<source>``).
    actor: str
    created_at: datetime = created_at_field()

    @property
    def net_cents(self) -> int:
        """What the purchase is still worth after its refunds."""
        return self.amount_cents - self.refunded_cents


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = {"schema": "rewards"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    purchase_id: uuid.UUID = Field(foreign_key="rewards.purchases.id")
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    reason: str | None = None
    actor: str
    created_at: datetime = created_at_field()


class PurchaseRequest(SQLModel, table=True):
    """An idempotency key a caller used: the same key must always mean the same request."""

    __tablename__ = "purchase_requests"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    # ``purchase`` or ``refund``: a key names one request of one operation.
    operation: str = Field(primary_key=True)
    # ``request:<Idempotency-Key>`` (HTTP, GraphQL) or ``event:<CloudEvent id>``.
    key: str = Field(primary_key=True)
    fingerprint: str
    result_id: uuid.UUID
    created_at: datetime = created_at_field()


class TenantCurrency(SQLModel, table=True):
    """The one currency a tenant's purchases are in (fixed by its first purchase)."""

    __tablename__ = "tenant_currencies"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    currency: str
    created_at: datetime = created_at_field()
