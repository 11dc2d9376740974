"""Erasure across services: the request identity sends, the confirmation each service sends
back, and scrubbing what the outbox still holds about the person."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, Self

from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event, record_event


class ProfileRef(BaseModel):
    """A social account of the person, as the channels know it."""

    channel: str
    platform_user_id: str


class ErasureRequested(Event):
    """Erase (or pseudonymize) everything held about a customer, then confirm."""

    type = "identity.erasure.requested.v1"

    request_id: uuid.UUID
    customer_id: uuid.UUID
    # The customer's records merged into it and their social accounts: the same person.
    customer_ids: list[uuid.UUID]
    profiles: list[ProfileRef]


class ErasureCompleted(Event):
    """A service has carried out an erasure request (``type`` is set per service)."""

    request_id: uuid.UUID
    customer_id: uuid.UUID
    service: str


@cache
def erasure_completed_event(service: str) -> type[ErasureCompleted]:
    """The event class of ``service``: ``<service>.erasure.completed.v1``."""
    return type(
        f"{service.title()}ErasureCompleted",
        (ErasureCompleted,),
        {"type": f"{service}.erasure.completed.v1", "__module__": __name__},
    )


async def confirm_erasure(
    session: AsyncSession, request: ErasureRequested, *, tenant_id: uuid.UUID, service: str
) -> None:
    """Announce, in the erasure's own transaction, that ``service`` has done its part."""
    event = erasure_completed_event(service)(
        request_id=request.request_id, customer_id=request.customer_id, service=service
    )
    await record_event(session, event, tenant_id=tenant_id, subject=str(request.customer_id))


async def scrub_outbox(session: AsyncSession, schema: str, needles: Sequence[str]) -> int:
    """Delete published outbox rows that mention any of ``needles`` (ids of the person);
    unpublished ones still have to leave. Returns how many went."""
    if not needles:
        return 0
    result = await session.execute(
        text(
            f"DELETE FROM {schema}.outbox WHERE published_at IS NOT NULL"
            " AND envelope::text LIKE ANY (:patterns)"
        ),
        {"patterns": [f"%{needle}%" for needle in needles]},
    )
    return int(getattr(result, "rowcount", 0) or 0)


class CustomerMerged(Event):
    """A reading of identity's ``identity.customer.merged.v1``: ``merged_id``'s records now
    belong to ``survivor_id`` (each service moves what it holds, keyed by ``merge_id``)."""

    type = "identity.customer.merged.v1"

    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID


class CustomerUnmerged(Event):
    """A reading of ``identity.customer.unmerged.v1``: the merge ``merge_id`` is undone."""

    type = "identity.customer.unmerged.v1"

    merge_id: uuid.UUID
    survivor_id: uuid.UUID
    restored_id: uuid.UUID


class ConsentChanged(Event):
    """A service's reading of identity's ``identity.consent.changed.v1``."""

    type = "identity.consent.changed.v1"

    customer_id: uuid.UUID
    purpose: str
    granted: bool
    changed_at: datetime


async def project_consent(
    event: ConsentChanged, *, envelope: Envelope, session: AsyncSession, schema: str
) -> None:
    """Keep the latest consent per purpose in ``<schema>.consents`` (a late, older event
    changes nothing). Bind ``schema`` with ``functools.partial`` in the service's handlers."""
    await session.execute(
        text(
            f"INSERT INTO {schema}.consents (tenant_id, customer_id, purpose, granted, changed_at)"
            " VALUES (:t, :c, :p, :g, :at) ON CONFLICT (tenant_id, customer_id, purpose) DO"
            f" UPDATE SET granted = EXCLUDED.granted, changed_at = EXCLUDED.changed_at"
            f" WHERE {schema}.consents.changed_at <= EXCLUDED.changed_at"
        ),
        {
            "t": envelope.tenantid,
            "c": event.customer_id,
            "p": event.purpose,
            "g": event.granted,
            "at": event.changed_at,
        },
    )


async def consent_allows(
    session: AsyncSession,
    schema: str,
    *,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    purpose: str,
) -> set[uuid.UUID]:
    """Which of ``customer_ids`` currently grant ``purpose`` (never asked: not granted)."""
    rows = await session.execute(
        text(
            f"SELECT customer_id FROM {schema}.consents WHERE tenant_id = :t"
            " AND customer_id = ANY(:ids) AND purpose = :p AND granted"
        ),
        {"t": tenant_id, "ids": list(customer_ids), "p": purpose},
    )
    return {row.customer_id for row in rows}


class PrivacyExportReference:
    """The entity ``PrivacyExport @key(fields: "customerId")`` that each service extends with
    its own JSON field: subclass it in a ``strawberry.federation.type`` with a
    ``customer_id: strawberry.ID`` field; only ``privacy:manage`` reaches it."""

    def __init__(self, customer_id: str) -> None:  # replaced by strawberry's dataclass init
        self.customer_id = customer_id

    @classmethod
    def resolve_reference(cls, info: Any, **representation: Any) -> Self:
        from crm_shared.auth import Permission
        from crm_shared.graphql import authorize

        authorize(info, Permission.PRIVACY_MANAGE)
        return cls(customer_id=str(representation["customerId"]))
