"""The points ledger: accounts, journal entries and their postings, lots of earned points.

Double entry: every journal entry has postings that sum to zero. An account's balance is the
sum of its postings (positive: points held by that account). Entries, postings and lot
consumptions are append-only (a database trigger refuses UPDATE and DELETE).
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, DateTime, Identity, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class AccountKind(StrEnum):
    """What an account holds; all but ``customer`` exist once per tenant."""

    CUSTOMER = "customer"  # one customer's points (a part of the tenant's liability)
    LIABILITY = "liability"  # parent of the customer accounts: points owed, in aggregate
    EXPENSE = "expense"  # points issued (earned or adjusted in); its balance is minus that
    REDEMPTION = "redemption"  # points customers spent
    BREAKAGE = "breakage"  # points that expired unspent


TENANT_ACCOUNT_KINDS = (
    AccountKind.LIABILITY,
    AccountKind.EXPENSE,
    AccountKind.REDEMPTION,
    AccountKind.BREAKAGE,
)


class EntryKind(StrEnum):
    """Why a journal entry was made."""

    EARN = "earn"
    SPEND = "spend"
    EXPIRE = "expire"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    TRANSFER = "transfer"  # lots moved between two customers' accounts (merges)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_id", name="accounts_tenant_customer"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    kind: str = AccountKind.CUSTOMER.value
    customer_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="rewards.accounts.id")
    # Cached sum of the account's postings, kept for customer accounts in the same transaction.
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = created_at_field()


class JournalEntry(SQLModel, table=True):
    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="journal_entries_idempotency"),
        UniqueConstraint("reverses_entry_id", name="journal_entries_reversed_once"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    kind: str
    customer_id: uuid.UUID
    # Where the movement came from (``event:<id>``, ``request:<key>``, ``expire:<lot>``).
    idempotency_key: str
    # A hash of what the entry does: the same key must always mean the same content.
    fingerprint: str
    reason: str
    actor: str
    reverses_entry_id: uuid.UUID | None = Field(
        default=None, foreign_key="rewards.journal_entries.id"
    )
    created_at: datetime = created_at_field()


class Posting(SQLModel, table=True):
    __tablename__ = "postings"
    __table_args__ = {"schema": "rewards"}

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    entry_id: uuid.UUID = Field(foreign_key="rewards.journal_entries.id")
    account_id: uuid.UUID = Field(foreign_key="rewards.accounts.id")
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))


class Lot(SQLModel, table=True):
    """Points earned together, spent oldest-expiring first, expiring together."""

    __tablename__ = "lots"
    __table_args__ = {"schema": "rewards"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    account_id: uuid.UUID = Field(foreign_key="rewards.accounts.id")
    entry_id: uuid.UUID = Field(foreign_key="rewards.journal_entries.id")
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    remaining: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    created_at: datetime = created_at_field()


class LotConsumption(SQLModel, table=True):
    """Points an entry took from a lot (a spend, an expiry, a reversal of an earn)."""

    __tablename__ = "lot_consumptions"
    __table_args__ = {"schema": "rewards"}

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    lot_id: uuid.UUID = Field(foreign_key="rewards.lots.id")
    entry_id: uuid.UUID = Field(foreign_key="rewards.journal_entries.id")
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
