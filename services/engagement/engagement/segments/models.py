"""Segment settings per tenant and each customer's current segment."""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class SegmentSettingsRow(SQLModel, table=True):
    """A tenant's own segment thresholds (absent: the service's defaults)."""

    __tablename__ = "segment_settings"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    window_days: int
    creator_min_originals: int
    occasional_min_contributions: int
    updated_at: datetime = created_at_field()


class CustomerSegment(SQLModel, table=True):
    """A customer's segment, since when they are in it, and when it was last computed."""

    __tablename__ = "customer_segments"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    segment: str = Field(max_length=16)
    since: datetime = created_at_field()
    computed_at: datetime = created_at_field()
