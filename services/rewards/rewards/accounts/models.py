"""Points accounts and their ledger entries (append-only; balances derive from entries)."""

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_id", name="accounts_tenant_customer"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    created_at: datetime = created_at_field()


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="ledger_entries_idempotency"),
        {"schema": "rewards"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    account_id: uuid.UUID = Field(foreign_key="rewards.accounts.id", index=True)
    points: int
    reason: str
    # Where the movement came from (an event id, a request key): the same source is one entry.
    idempotency_key: str
    created_at: datetime = created_at_field()
