"""Consent per purpose, as an append-only history; the latest record per purpose holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class Purpose(StrEnum):
    """What a customer may agree to (docs/events.md)."""

    MARKETING = "marketing"
    PROFILING = "profiling"
    PARTNER_SHARING = "partner_sharing"
    CONTENT_REUSE = "content_reuse"


class ConsentRecord(SQLModel, table=True):
    __tablename__ = "consent_records"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    purpose: str
    granted: bool
    source: str
    policy_version: str
    recorded_by: str
    recorded_at: datetime = created_at_field()


class ConsentInput(BaseModel):
    purpose: Purpose
    granted: bool
    source: str = PydanticField(min_length=1, max_length=100)
    policy_version: str = PydanticField(min_length=1, max_length=50)

    @field_validator("source", "policy_version", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value
