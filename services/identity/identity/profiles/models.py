"""Social profiles: who someone is on a channel, known with or without a customer."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from crm_shared.channels import Channel
from crm_shared.db import created_at_field

__all__ = ["Channel", "Evidence", "LinkSuggestion", "ProfileLink", "SocialProfile"]


class Evidence(StrEnum):
    """Why a profile is known to be the customer's."""

    CUSTOMER_CONFIRMED = "customer_confirmed"
    VERIFIED_CONTACT_POINT = "verified_contact_point"
    STAFF_DECISION = "staff_decision"


class SocialProfile(SQLModel, table=True):
    __tablename__ = "social_profiles"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    channel: str
    platform_user_id: str
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None
    verified: bool = False
    # The customer of the current link (a copy of the open ProfileLink, for reads).
    customer_id: uuid.UUID | None = None
    first_seen_at: datetime = created_at_field()
    last_seen_at: datetime = created_at_field()


class ProfileLink(SQLModel, table=True):
    """One period in which a profile belonged to a customer, with its evidence."""

    __tablename__ = "profile_links"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    profile_id: uuid.UUID
    customer_id: uuid.UUID
    evidence: str
    confidence: float
    linked_by: str
    linked_at: datetime = created_at_field()
    unlinked_by: str | None = None
    unlinked_at: datetime | None = None
    unlink_reason: str | None = None


class LinkSuggestion(SQLModel, table=True):
    """A likely match for staff to accept or reject; never linked automatically."""

    __tablename__ = "link_suggestions"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    profile_id: uuid.UUID
    customer_id: uuid.UUID
    reason: str
    confidence: float
    status: str = "open"
    decided_by: str | None = None
    decided_at: datetime | None = None
    created_at: datetime = created_at_field()
