"""Access: staff users, API clients, signing keys and the audit log of staff actions."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import field_validator
from sqlalchemy import Column, DateTime, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from crm_shared.auth import CLIENT_SCOPES, ROLES
from crm_shared.db import created_at_field
from crm_shared.validation import check_email, normalize_email


class StaffUserCreate(SQLModel):
    email: str = Field(max_length=320)
    password: str = Field(min_length=12, max_length=1024)
    role: str

    @field_validator("email", mode="before")
    @classmethod
    def _normalize_email(cls, value: object) -> object:
        return normalize_email(value)

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        return check_email(value)

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        if value not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)}")
        return value


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email", name="staff_users_tenant_email"),
        {"schema": "identity"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="identity.tenants.id", index=True)
    email: str
    password_hash: str
    role: str
    active: bool = True
    created_at: datetime = created_at_field()


class ApiClientCreate(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str
    scopes: list[str]

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in CLIENT_SCOPES:
            raise ValueError(f"must be one of {', '.join(CLIENT_SCOPES)}")
        return value


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"
    __table_args__ = {"schema": "identity"}

    # The client_id of OAuth2.
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="identity.tenants.id", index=True)
    name: str
    kind: str
    # SHA-256 of a 256-bit random secret: slow hashing protects guessable passwords only.
    secret_hash: str
    scopes: list[str] = Field(sa_column=Column(ARRAY(String), nullable=False))
    active: bool = True
    created_at: datetime = created_at_field()
    # When ``revokeApiClient`` took it out (a partner's subscription and webhooks with it).
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_keys"
    __table_args__ = {"schema": "identity"}

    kid: str = Field(primary_key=True)
    # PEM of the EC P-256 private key. Assumption: the database is the key store; a deployment
    # with a KMS would keep only a reference here.
    private_pem: str
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()
    # No longer signs from this time; still verifies tokens until ``expires_at``.
    retired_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(index=True)
    actor: str
    action: str
    record_type: str
    record_id: str
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    at: datetime = created_at_field()
