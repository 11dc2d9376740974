"""Customers' influence, and when each tenant's was last computed."""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class InfluenceScore(SQLModel, table=True):
    """A customer's influence as last computed (only with their profiling consent)."""

    __tablename__ = "influence_scores"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    reach: int
    engagement_received: int
    amplification: int
    page_rank: float
    score: float
    mean_sentiment: float | None = None
    influencer: bool
    advocate: bool
    detractor: bool
    computed_at: datetime = created_at_field()


class InfluenceRun(SQLModel, table=True):
    """A tenant's last influence computation and the size of its graph."""

    __tablename__ = "influence_runs"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    computed_at: datetime = created_at_field()
    profiles: int
    edges: int
