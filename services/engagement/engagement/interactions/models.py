"""Interactions: what customers said and did on social channels (ingestion comes with issue 4)."""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class InteractionBase(SQLModel):
    channel: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    text: str | None = None


class Interaction(InteractionBase, table=True):
    __tablename__ = "interactions"
    __table_args__ = {"schema": "engagement"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    # Null until identity links the author's social profile to a customer.
    customer_id: uuid.UUID | None = Field(default=None, index=True)
    created_at: datetime = created_at_field()
