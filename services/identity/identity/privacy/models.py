"""Erasure requests and the confirmations each service sends back."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class ErasureRequest(SQLModel, table=True):
    __tablename__ = "erasure_requests"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    requested_by: str
    requested_at: datetime = created_at_field()
    completed_at: datetime | None = None


class ErasureConfirmation(SQLModel, table=True):
    __tablename__ = "erasure_confirmations"
    __table_args__ = {"schema": "identity"}

    request_id: uuid.UUID = Field(primary_key=True)
    service: str = Field(primary_key=True)
    confirmed_at: datetime = created_at_field()
