"""How referrals follow identity: attribution at registration, verified contact fingerprints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import Handler
from crm_shared.privacy import ErasureRequested
from rewards.referrals import service


class CustomerRegisteredWithReferral(Event):
    """Referrals' reading of ``identity.customer.registered.v1`` (both fields optional)."""

    type = "identity.customer.registered.v1"

    customer_id: uuid.UUID
    registered_at: datetime
    referral_code: str | None = None
    verified_contact_fingerprints: list[str] = []


class ContactPointVerified(Event):
    """Referrals' reading of ``identity.contact_point.verified.v1``."""

    type = "identity.contact_point.verified.v1"

    customer_id: uuid.UUID
    fingerprint: str


async def attribute_registered_customer(
    event: CustomerRegisteredWithReferral, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Give the new customer a code, keep their fingerprints, attribute them to a referrer."""
    tenant_id = envelope.tenantid
    await service.record_fingerprints(
        session=session,
        tenant_id=tenant_id,
        customer_id=event.customer_id,
        fingerprints=event.verified_contact_fingerprints,
    )
    await service.code_for(session=session, tenant_id=tenant_id, customer_id=event.customer_id)
    if event.referral_code:
        await service.attribute(
            session=session,
            tenant_id=tenant_id,
            referred_id=event.customer_id,
            code=event.referral_code,
            at=event.registered_at,
        )


async def remember_verified_contact(
    event: ContactPointVerified, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Keep the fingerprint of a contact point the customer verified."""
    await service.record_fingerprints(
        session=session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        fingerprints=[event.fingerprint],
    )


async def forget_erased_fingerprints(
    event: ErasureRequested, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Fingerprints are pseudonymous personal data: an erased customer's go."""
    await service.forget_fingerprints(
        session=session,
        tenant_id=envelope.tenantid,
        customer_ids=[event.customer_id, *event.customer_ids],
    )


REFERRAL_HANDLERS: list[Handler[Any]] = [
    Handler(CustomerRegisteredWithReferral, attribute_registered_customer),
    Handler(ContactPointVerified, remember_verified_contact),
    Handler(ErasureRequested, forget_erased_fingerprints),
]
