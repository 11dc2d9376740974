"""A suggestion that two customers are one person."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class SuggestionStatus(StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"


class EvidenceKind(StrEnum):
    """Why two customers look like one person (each with its weight in the score)."""

    SAME_MAILBOX = "same_mailbox"  # e-mail addresses reaching one mailbox (dots, +tags)
    SIMILAR_NAME = "similar_name"  # names alike once accents and case are ignored
    SAME_BIRTH_DATE = "same_birth_date"
    SHARED_HANDLE = "shared_handle"  # linked social profiles with the same handle
    SAME_PHONE_NUMBER = "same_phone_number"  # one national number under two country codes


class DuplicateSuggestion(SQLModel, table=True):
    """The pair is stored once (``customer_id`` < ``candidate_id``)."""

    __tablename__ = "duplicate_suggestions"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    candidate_id: uuid.UUID
    score: float
    # [{"kind": EvidenceKind, "detail": str}]
    evidence: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    status: str = SuggestionStatus.OPEN.value
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    dismissed_by: str | None = None
    dismissed_at: datetime | None = None
    dismiss_reason: str | None = None
