"""Interactions: what people said to or about the brand on social channels, as ingested."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_shared.channels import INTERACTION_CHANNELS
from crm_shared.db import created_at_field

# The shared vocabulary (identity's profiles use the same channels), plus "other".
CHANNELS = INTERACTION_CHANNELS
KINDS = (
    "post",
    "comment",
    "reply",
    "mention",
    "message",
    "review",
    "question",
    "complaint",
    "share",
)
SENTIMENT_LABELS = ("positive", "neutral", "negative", "unanalyzed")


class Interaction(SQLModel, table=True):
    """One platform item; ``(tenant, channel, platform_id)`` is unique: the same item is one row."""

    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "platform_id", name="interactions_platform_item"),
        {"schema": "engagement"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    channel: str = Field(max_length=32)
    platform_id: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    thread_id: str | None = Field(default=None, max_length=200)
    parent_id: str | None = Field(default=None, max_length=200)
    author_platform_user_id: str | None = Field(default=None, max_length=200)
    author_handle: str | None = Field(default=None, max_length=200)
    author_display_name: str | None = Field(default=None, max_length=300)
    # Null until identity links the author's social profile to a customer.
    customer_id: uuid.UUID | None = Field(default=None, index=True)
    text: str | None = None
    language: str = Field(default="und", max_length=16)
    sentiment_score: float | None = None
    sentiment_label: str = Field(default="unanalyzed", max_length=16)
    rating: int | None = None
    # Written by one of the tenant's brand accounts (care): the brand speaking.
    by_brand: bool = False
    # The platform's time of the item; received_at is when we got it.
    created_at: datetime = created_at_field()
    received_at: datetime = created_at_field()
    edited_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class InteractionTracker(SQLModel, table=True):
    """A tracker that matched an interaction's text."""

    __tablename__ = "interaction_trackers"
    __table_args__ = {"schema": "engagement"}

    interaction_id: uuid.UUID = Field(primary_key=True)
    tracker_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID


class Author(SQLModel, table=True):
    """A platform user seen in the tenant (the first sighting announces ``author seen``)."""

    __tablename__ = "authors"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=32)
    platform_user_id: str = Field(primary_key=True, max_length=200)
    handle: str | None = Field(default=None, max_length=200)
    display_name: str | None = Field(default=None, max_length=300)
    first_seen_at: datetime = created_at_field()
    last_seen_at: datetime = created_at_field()


class ProfileLink(SQLModel, table=True):
    """Identity's link of a social profile to a customer (projected from its events)."""

    __tablename__ = "profile_links"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=32)
    platform_user_id: str = Field(primary_key=True, max_length=200)
    customer_id: uuid.UUID
    link_id: uuid.UUID | None = None
    linked_at: datetime = created_at_field()
