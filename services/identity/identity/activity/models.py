"""The projection of other services' figures about a customer, one row per customer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel


class CustomerActivity(SQLModel, table=True):
    """Each figure with the time of the event that set it (a late, older event loses)."""

    __tablename__ = "customer_activity"
    __table_args__ = {"schema": "identity"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    value_cents: int = 0
    value_at: datetime | None = None
    balance: int = 0
    balance_at: datetime | None = None
    segment: str | None = None
    segment_at: datetime | None = None
    tier: str | None = None
    tier_at: datetime | None = None
    last_interaction_at: datetime | None = None
