"""A customer's value: own purchases net of refunds, and what the customers they referred bought."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class CustomerValue(SQLModel, table=True):
    """The last value computed for a customer, kept to announce only changes."""

    __tablename__ = "customer_values"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    own_revenue_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    referral_revenue_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    currency: str | None = None
    updated_at: datetime = created_at_field()

    @property
    def value_cents(self) -> int:
        """Own revenue plus referral revenue."""
        return self.own_revenue_cents + self.referral_revenue_cents


class AppliedMerge(SQLModel, table=True):
    """A merge of identity's as rewards applied it: while open (merged, not unmerged), what
    names the merged-away customer (its referral code) means the survivor."""

    __tablename__ = "customer_merges"
    __table_args__ = {"schema": "rewards"}

    merge_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    merged_at: datetime | None = None
    # Set by the unmerge (also when it arrived first: the merge then changes nothing).
    unmerged_at: datetime | None = None


class MergeMove(SQLModel, table=True):
    """One row a merge moved to the survivor: the unmerge moves back exactly these."""

    __tablename__ = "merge_moves"
    __table_args__ = {"schema": "rewards"}

    merge_id: uuid.UUID = Field(primary_key=True, foreign_key="rewards.customer_merges.merge_id")
    kind: str = Field(primary_key=True)
    row_id: uuid.UUID = Field(primary_key=True)
