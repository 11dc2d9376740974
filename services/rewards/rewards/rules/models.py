"""Rules and their versions, the payouts they made, and the trigger events rewards has seen."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class Rule(SQLModel, table=True):
    """A rule's identity and running totals; what it pays is its current version."""

    __tablename__ = "rules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "default_key", name="rules_default_key"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    version: int = 1
    # Copied from the current version, so the payout path reads one row.
    trigger: str
    priority: int = 0
    enabled: bool = True
    # Rules rewards makes itself (``signup``): one per tenant.
    default_key: str | None = None
    # What the rule has paid, across its versions (the budget counts these).
    paid_points: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    paid_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class RuleVersion(SQLModel, table=True):
    """One immutable definition of a rule (``rewards.rules.conditions.RuleDefinition``)."""

    __tablename__ = "rule_versions"
    __table_args__ = {"schema": "rewards"}

    rule_id: uuid.UUID = Field(foreign_key="rewards.rules.id", primary_key=True)
    version: int = Field(primary_key=True)
    tenant_id: uuid.UUID
    definition: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_by: str
    created_at: datetime = created_at_field()


class RulePayout(SQLModel, table=True):
    """What one rule version paid for one event (at most once per event and rule)."""

    __tablename__ = "rule_payouts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id", "rule_id", name="rule_payouts_once"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    rule_id: uuid.UUID = Field(foreign_key="rewards.rules.id")
    version: int
    event_id: uuid.UUID
    customer_id: uuid.UUID
    # When the event happened: caps count payouts by this.
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    points: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    entry_id: uuid.UUID | None = None
    offer_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    purchase_id: uuid.UUID | None = None
    created_at: datetime = created_at_field()


class PayoutRefund(SQLModel, table=True):
    """Points a refund took back from a purchase's payout (once per refund and payout)."""

    __tablename__ = "payout_refunds"
    __table_args__ = (
        UniqueConstraint("refund_id", "payout_id", name="payout_refunds_once"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    refund_id: uuid.UUID
    payout_id: uuid.UUID = Field(foreign_key="rewards.rule_payouts.id")
    # The refund's amount: partial refunds take back points in proportion, cumulatively.
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Points the customer no longer had (spent before the refund): not taken back.
    shortfall: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    entry_id: uuid.UUID | None = None
    created_at: datetime = created_at_field()


class TriggerEvent(SQLModel, table=True):
    """A consumed trigger event with the facts its conditions look at (for dry runs, tiers)."""

    __tablename__ = "trigger_events"
    __table_args__ = {"schema": "rewards"}

    event_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    type: str
    customer_id: uuid.UUID
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    # ``rewards.rules.conditions.Facts`` as JSON.
    facts: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()


class PendingTrigger(SQLModel, table=True):
    """A trigger event of a social profile no customer is linked to yet (paid on the link)."""

    __tablename__ = "pending_triggers"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    event_id: uuid.UUID = Field(primary_key=True)
    type: str
    channel: str
    platform_user_id: str
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    # The event's own facts (``pay_trigger``'s keyword data); the customer's come at the link.
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()


class CustomerSegment(SQLModel, table=True):
    """Engagement's latest segment of a customer (for conditions on segments)."""

    __tablename__ = "customer_segments"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    segment: str
    changed_at: datetime = created_at_field()


class RuleTenant(SQLModel, table=True):
    """A tenant rewards has set its default rules up for."""

    __tablename__ = "rule_tenants"
    __table_args__ = {"schema": "rewards"}

    tenant_id: uuid.UUID = Field(primary_key=True)
    created_at: datetime = created_at_field()
