"""Identity's privacy events, as rewards reads them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import Handler
from crm_shared.privacy import ErasureRequested
from rewards.privacy import service


class ConsentChanged(Event):
    """Rewards' reading of ``identity.consent.changed.v1``."""

    type = "identity.consent.changed.v1"

    customer_id: uuid.UUID
    purpose: str
    granted: bool
    changed_at: datetime


async def project_consent(
    event: ConsentChanged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Offers honour the customer's marketing consent: keep it at hand."""
    await service.project_consent(
        session,
        tenant_id=envelope.tenantid,
        customer_id=event.customer_id,
        purpose=event.purpose,
        granted=event.granted,
        changed_at=event.changed_at,
    )


async def erase_customer(
    event: ErasureRequested, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Pseudonymize the customer's ledger and confirm."""
    await service.erase(session, event, tenant_id=envelope.tenantid)


PRIVACY_HANDLERS: list[Handler[ConsentChanged] | Handler[ErasureRequested]] = [
    Handler(ConsentChanged, project_consent),
    Handler(ErasureRequested, erase_customer),
]
