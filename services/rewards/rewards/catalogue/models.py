"""The catalogue: rewards customers buy with points, and each purchase of one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field
from rewards.accounts.checks import MAX_POINTS

MAX_STOCK = 10_000_000


class CatalogueItem(SQLModel, table=True):
    __tablename__ = "catalogue_items"
    __table_args__ = {"schema": "rewards"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    name: str
    description: str = ""
    points_cost: int = Field(sa_column=Column(BigInteger, nullable=False))
    # None: unlimited. ``redeemed`` only grows, by a conditional update (see service.py).
    stock: int | None = None
    redeemed: int = 0
    per_customer_limit: int | None = None
    # An item that is a coupon: redeeming it issues a coupon of this offer.
    offer_id: uuid.UUID | None = Field(default=None, foreign_key="rewards.offers.id")
    active: bool = True
    active_from: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    active_to: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()

    def on_offer(self, now: datetime) -> bool:
        """Active and within its window (in stock or not)."""
        return (
            self.active
            and (self.active_from is None or self.active_from <= now)
            and (self.active_to is None or now < self.active_to)
        )

    def available(self, now: datetime) -> bool:
        """On offer and in stock."""
        return self.on_offer(now) and (self.stock is None or self.redeemed < self.stock)


class CatalogueRedemption(SQLModel, table=True):
    """A customer bought an item with points (the ledger's spend entry is ``entry_id``)."""

    __tablename__ = "catalogue_redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="catalogue_redemptions_idempotency"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    item_id: uuid.UUID = Field(foreign_key="rewards.catalogue_items.id")
    customer_id: uuid.UUID
    idempotency_key: str
    entry_id: uuid.UUID | None = Field(default=None, foreign_key="rewards.journal_entries.id")
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    coupon_id: uuid.UUID | None = Field(default=None, foreign_key="rewards.coupons.id")
    created_at: datetime = created_at_field()


class CatalogueClaim(SQLModel, table=True):
    """How many of an item a customer has bought (bounded by the item's limit)."""

    __tablename__ = "catalogue_claims"
    __table_args__ = {"schema": "rewards"}

    item_id: uuid.UUID = Field(primary_key=True, foreign_key="rewards.catalogue_items.id")
    customer_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    count: int


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class CatalogueItemData(BaseModel):
    """An item as created, or as it will be after an update (the whole of it is checked)."""

    name: str = PydanticField(min_length=1, max_length=200)
    description: str = PydanticField(default="", max_length=2000)
    points_cost: int = PydanticField(ge=1, le=MAX_POINTS)
    stock: int | None = PydanticField(default=None, ge=0, le=MAX_STOCK)
    per_customer_limit: int | None = PydanticField(default=None, ge=1, le=1000)
    offer_id: uuid.UUID | None = None
    active: bool = True
    active_from: datetime | None = None
    active_to: datetime | None = None

    _strip_text = field_validator("name", "description", mode="before")(_strip)

    @field_validator("active_from", "active_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. 2026-12-24T18:00:00Z)")
        return value

    @field_validator("active_to")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("active_from")
        if value is not None and starts is not None and value <= starts:
            raise ValueError("must be after activeFrom")
        return value
