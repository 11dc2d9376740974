"""Identity's privacy and merge events, as engagement reads them."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from crm_shared.events.consumer import Handler
from crm_shared.privacy import (
    ConsentChanged,
    CustomerMerged,
    CustomerUnmerged,
    ErasureRequested,
    project_consent,
)
from engagement.privacy import service


async def rekey_merged(event: CustomerMerged, *, envelope: Envelope, session: AsyncSession) -> None:
    """The merged customer's history now belongs to the survivor."""
    await service.move_history(
        session,
        tenant_id=envelope.tenantid,
        merge_id=event.merge_id,
        from_id=event.merged_id,
        to_id=event.survivor_id,
    )


async def rekey_unmerged(
    event: CustomerUnmerged, *, envelope: Envelope, session: AsyncSession
) -> None:
    """What the merge moved goes back to the restored customer."""
    await service.move_history_back(
        session,
        tenant_id=envelope.tenantid,
        merge_id=event.merge_id,
        survivor_id=event.survivor_id,
        restored_id=event.restored_id,
    )


async def erase_customer(
    event: ErasureRequested, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Delete the person's interactions and accounts, and confirm."""
    await service.erase(session, event, tenant_id=envelope.tenantid)


# Influence profiling honours the customer's profiling consent: engagement keeps it at hand.
PRIVACY_HANDLERS: list[Handler[Any]] = [
    Handler(ConsentChanged, partial(project_consent, schema="engagement")),
    Handler(ErasureRequested, erase_customer),
    Handler(CustomerMerged, rekey_merged),
    Handler(CustomerUnmerged, rekey_unmerged),
]
