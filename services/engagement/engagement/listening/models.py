"""Trackers: what a tenant listens for."""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

TRACKER_KINDS = ("keyword", "hashtag", "phrase")


class Tracker(SQLModel, table=True):
    """A keyword, hashtag (with its ``#``) or phrase, matched case-insensitively on words."""

    __tablename__ = "trackers"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=16)
    term: str = Field(max_length=200)
    created_at: datetime = created_at_field()
