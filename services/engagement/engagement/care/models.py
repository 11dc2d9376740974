"""Care's records: the brand's own accounts, cases and what belongs to them."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

CASE_KINDS = ("complaint", "question", "mention")
STATUSES = ("open", "assigned", "answered", "resolved", "closed")
ACTIVE_STATUSES = ("open", "assigned", "answered")
PRIORITIES = ("urgent", "high", "normal", "low")
TARGETS = ("first_response", "resolution")
# A reply we recorded but cannot post ourselves: a publisher (a person or a platform
# connector) posts it and would mark it published or failed.
TO_PUBLISH = "to_publish"


class BrandAccount(SQLModel, table=True):
    """One of the brand's own accounts on a channel: what it writes is the brand speaking."""

    __tablename__ = "brand_accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "platform_user_id", name="brand_accounts_account"),
        {"schema": "engagement"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    channel: str = Field(max_length=32)
    platform_user_id: str = Field(max_length=200)
    handle: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()


class CustomerValue(SQLModel, table=True):
    """Rewards' figure of what a customer is worth (own and referred revenue), projected."""

    __tablename__ = "customer_values"
    __table_args__ = {"schema": "engagement"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    value_cents: int = Field(sa_type=BigInteger)
    changed_at: datetime = created_at_field()


class Case(SQLModel, table=True):
    """A complaint, question or negative mention the brand owes an answer to."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "interaction_id", name="cases_opening_interaction"),
        {"schema": "engagement"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    # The interaction that opened it; the customer is that interaction's (it follows links).
    interaction_id: uuid.UUID
    channel: str = Field(max_length=32)
    # The platform's thread, or the opening item itself when it has none.
    thread_key: str = Field(max_length=200)
    author_platform_user_id: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=16)
    status: str = Field(default="open", max_length=16)
    priority: str = Field(max_length=16)
    priority_rank: int
    priority_score: float
    sentiment_score: float | None = None
    author_followers: int | None = None
    customer_value_cents: int | None = Field(default=None, sa_type=BigInteger)
    assignee_id: str | None = Field(default=None, max_length=200)
    opened_at: datetime = Field(sa_type=DateTime(timezone=True))
    assigned_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    first_response_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    first_response_due_at: datetime = Field(sa_type=DateTime(timezone=True))
    resolved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    resolution_due_at: datetime = Field(sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    updated_at: datetime = created_at_field()


class CaseInteraction(SQLModel, table=True):
    """An interaction that belongs to a case: its opening, follow-ups and the brand's replies."""

    __tablename__ = "case_interactions"
    __table_args__ = {"schema": "engagement"}

    case_id: uuid.UUID = Field(primary_key=True)
    interaction_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID


class CaseReply(SQLModel, table=True):
    """A reply an agent wrote through ``replyToCase``, waiting to be posted on the platform."""

    __tablename__ = "case_replies"
    __table_args__ = {"schema": "engagement"}

    interaction_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    case_id: uuid.UUID
    replied_by: str = Field(max_length=250)
    publish_status: str = Field(default=TO_PUBLISH, max_length=16)
    created_at: datetime = created_at_field()


class CaseBreach(SQLModel, table=True):
    """A case missed an SLA target (once per case and target)."""

    __tablename__ = "case_breaches"
    __table_args__ = {"schema": "engagement"}

    case_id: uuid.UUID = Field(primary_key=True)
    target: str = Field(primary_key=True, max_length=16)
    tenant_id: uuid.UUID
    due_at: datetime = Field(sa_type=DateTime(timezone=True))
    breached_at: datetime = created_at_field()
