"""The CloudEvents 1.0 envelope (structured JSON mode) and the base of typed events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_BASE = "https://schemas.social-crm.dev/events"


class Event(BaseModel):
    """An immutable fact, named in the past tense; subclasses set ``type`` (versioned)."""

    # Tolerant readers: a consumer's model of another service's event ignores fields it
    # does not know, so producers can add fields within a version.
    model_config = ConfigDict(frozen=True, extra="ignore")

    type: ClassVar[str]

    @classmethod
    def dataschema(cls) -> str:
        """The URI of this event type's JSON Schema."""
        return f"{SCHEMA_BASE}/{cls.type}.json"


def routing_key_for(event_type: str, tenant_id: uuid.UUID | str) -> str:
    """``<type>.<tenant>``: services bind ``<type>.*``; partners are limited to their tenant."""
    return f"{event_type}.{tenant_id}"


def _new_id() -> uuid.UUID:
    return uuid.uuid4()


class Envelope(BaseModel):
    """A CloudEvent as it travels: context attributes, extensions and the event's data."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: str = "1.0"
    id: uuid.UUID = Field(default_factory=_new_id)
    source: str
    type: str
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    tenantid: uuid.UUID
    traceparent: str | None = None
    tracestate: str | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        source: str,
        tenant_id: uuid.UUID,
        subject: str | None,
        trace_headers: dict[str, str],
    ) -> Self:
        """Put a typed event into an envelope carrying the tenant and the trace context."""
        return cls(
            source=source,
            type=event.type,
            subject=subject,
            dataschema=event.dataschema(),
            tenantid=tenant_id,
            traceparent=trace_headers.get("traceparent"),
            tracestate=trace_headers.get("tracestate"),
            data=event.model_dump(mode="json"),
        )

    @property
    def routing_key(self) -> str:
        """Where the broker routes this event."""
        return routing_key_for(self.type, self.tenantid)

    @property
    def trace_headers(self) -> dict[str, str]:
        """The W3C trace context this event was produced in."""
        headers = {}
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        if self.tracestate:
            headers["tracestate"] = self.tracestate
        return headers

    def to_json(self) -> bytes:
        """The structured-mode wire form."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, body: bytes) -> Self:
        """Parse the wire form; raises ``pydantic.ValidationError`` when it is not an envelope."""
        return cls.model_validate_json(body)
