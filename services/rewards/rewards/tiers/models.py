"""Tier definitions per tenant, and the tier each customer is in."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Column, DateTime, Numeric
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import String
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class TierBasis(StrEnum):
    """What a tier's threshold counts over its rolling window."""

    POINTS = "points"  # points earned (earn entries, less refunds), not the balance
    ENGAGEMENT = "engagement"  # interactions recorded


class Tier(SQLModel, table=True):
    """A level of a tenant's programme; a removed tier keeps its row (customers' history)."""

    __tablename__ = "tiers"
    __table_args__ = {"schema": "rewards"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    name: str
    # Higher levels rank above lower ones; a customer is in the highest level they qualify for.
    level: int
    basis: str
    threshold: int = Field(sa_column=Column(BigInteger, nullable=False))
    window_days: int
    multiplier: Decimal = Field(sa_column=Column(Numeric(4, 2), nullable=False))
    benefits: list[str] = Field(sa_column=Column(ARRAY(String), nullable=False))
    removed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class CustomerTier(SQLModel, table=True):
    """The tier a customer is in (None: none reached) and since when."""

    __tablename__ = "customer_tiers"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    tier_id: uuid.UUID | None = Field(default=None, foreign_key="rewards.tiers.id")
    since: datetime = created_at_field()
    computed_at: datetime = created_at_field()
