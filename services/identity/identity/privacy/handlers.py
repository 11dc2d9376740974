"""Other services confirm erasures; identity tracks them until all have."""

from __future__ import annotations

from functools import partial

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.events import Envelope
from crm_shared.events.consumer import Handler
from crm_shared.privacy import ErasureCompleted, erasure_completed_event
from identity.privacy import service


async def record_confirmation(
    event: ErasureCompleted, *, envelope: Envelope, session: AsyncSession, expected: list[str]
) -> None:
    """Note the service's confirmation (idempotent) and complete the request if it was last."""
    await service.confirm(
        session=session,
        tenant_id=envelope.tenantid,
        request_id=event.request_id,
        service=event.service,
        expected=expected,
    )


def confirmation_handlers(expected: list[str]) -> list[Handler[ErasureCompleted]]:
    """One handler per other service's ``<service>.erasure.completed.v1``."""
    return [
        Handler(erasure_completed_event(name), partial(record_confirmation, expected=expected))
        for name in expected
        if name != service.SERVICE
    ]
