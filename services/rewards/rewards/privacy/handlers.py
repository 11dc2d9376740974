"""Identity's privacy events, as rewards reads them."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from crm_shared.events.consumer import Handler
from crm_shared.privacy import ConsentChanged, ErasureRequested, project_consent
from rewards.privacy import service


async def erase_customer(
    event: ErasureRequested, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Pseudonymize the customer's ledger and confirm."""
    await service.erase(session, event, tenant_id=envelope.tenantid)


# Offers honour the customer's marketing consent: rewards keeps it at hand.
PRIVACY_HANDLERS: list[Handler[Any]] = [
    Handler(ConsentChanged, partial(project_consent, schema="rewards")),
    Handler(ErasureRequested, erase_customer),
]
