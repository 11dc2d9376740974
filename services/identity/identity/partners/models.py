"""Partners: broker subscriptions, webhook endpoints, the events they get, and deliveries."""

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import field_validator
from sqlalchemy import Column, DateTime, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from crm_shared.db import created_at_field

# ``<service>.<aggregate>.<past-tense verb>.v<N>``, as every event type is named.
EVENT_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*\.[a-z][a-z_]*\.v[0-9]+$")


def check_event_types(values: list[str], *, allow_empty: bool) -> list[str]:
    """The event types, each named as event types are, without repeats."""
    if not values and not allow_empty:
        raise ValueError("name at least one event type")
    for value in values:
        if not EVENT_TYPE.match(value):
            raise ValueError(f"{value!r} is not an event type (<service>.<aggregate>.<verb>.vN)")
    if len(set(values)) != len(values):
        raise ValueError("an event type is given twice")
    return sorted(values)


class PartnerSubscriptionCreate(SQLModel):
    client_id: uuid.UUID
    event_types: list[str] = Field(max_length=100)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        return check_event_types(value, allow_empty=False)


class PartnerSubscription(SQLModel, table=True):
    """A partner API client's own queue on the broker, bound to its tenant's events."""

    __tablename__ = "partner_subscriptions"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="identity.tenants.id", index=True)
    client_id: uuid.UUID = Field(foreign_key="identity.api_clients.id", index=True)
    broker_user: str
    queue: str
    event_types: list[str] = Field(sa_column=Column(ARRAY(String), nullable=False))
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Why: revoked by staff, or with its API client.
    revoked_reason: str | None = None


class WebhookEndpointBase(SQLModel):
    url: str = Field(max_length=2048)
    # Empty: every event type.
    event_types: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(String), nullable=False)
    )
    description: str = Field(default="", max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return value

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        return check_event_types(value, allow_empty=True)


class WebhookEndpointCreate(WebhookEndpointBase):
    # The partner API client the endpoint delivers to (revoking the client disables it);
    # none: the tenant's own endpoint.
    client_id: uuid.UUID | None = None


class WebhookEndpointUpdate(SQLModel):
    url: str | None = Field(default=None, max_length=2048)
    event_types: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    # True re-enables a disabled endpoint.
    enabled: bool | None = None
    # Gives the endpoint to a partner client (it cannot be taken back: revoke the client).
    client_id: uuid.UUID | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else WebhookEndpointBase._url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_event_types(value, allow_empty=True)


class WebhookEndpoint(WebhookEndpointBase, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="identity.tenants.id", index=True)
    client_id: uuid.UUID | None = Field(default=None, foreign_key="identity.api_clients.id")
    # ``whsec_`` + base64: the signing key itself (HMAC needs it; never shown after creation).
    secret: str
    # After a rotation, the previous secret also signs until ``previous_secret_expires_at``.
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True)
    )
    disabled_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    disabled_reason: str | None = None
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint takes events of ``event_type``."""
        return not self.event_types or event_type in self.event_types


class WebhookEvent(SQLModel, table=True):
    """An event kept for delivery and replay: the envelope exactly as it was published."""

    __tablename__ = "webhook_events"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID = Field(index=True)
    type: str
    time: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    envelope: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    received_at: datetime = created_at_field()


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Not sent: a customer it is about has not granted partner_sharing (identity.partners.sharing).
    WITHHELD = "withheld"


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint, tried until it succeeds or its window closes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", "generation", name="webhook_deliveries_once"),
        {"schema": "identity"},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(index=True)
    endpoint_id: uuid.UUID = Field(foreign_key="identity.webhook_endpoints.id", index=True)
    event_id: uuid.UUID = Field(foreign_key="identity.webhook_events.id")
    # 0 for the first delivery of an event to an endpoint, then one more per replay.
    generation: int = 0
    status: str = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # No attempt starts after this: the retry window is over.
    deadline: datetime = Field(sa_type=DateTime(timezone=True))
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime = created_at_field()
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class WebhookAttempt(SQLModel, table=True):
    """One HTTP request of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = {"schema": "identity"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID
    delivery_id: uuid.UUID = Field(foreign_key="identity.webhook_deliveries.id", index=True)
    attempted_at: datetime = Field(sa_type=DateTime(timezone=True))
    status_code: int | None = None
    error: str | None = None
    latency_ms: float


class PartnerSignup(SQLModel, table=True):
    """A sign-up a partner sent with an ``Idempotency-Key``: the same key finds its customer."""

    __tablename__ = "partner_signups"
    __table_args__ = {"schema": "identity"}

    tenant_id: uuid.UUID = Field(foreign_key="identity.tenants.id", primary_key=True)
    caller: str = Field(primary_key=True)
    idempotency_key: str = Field(primary_key=True)
    # SHA-256 of the canonical JSON of the body: another body under the same key is a conflict.
    body_hash: str
    customer_id: uuid.UUID = Field(foreign_key="identity.customers.id")
    created_at: datetime = created_at_field()
