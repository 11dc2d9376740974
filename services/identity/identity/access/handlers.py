"""Staff actions of the other services, into identity's audit log."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.audit import StaffActionRecorded, staff_action_event
from crm_shared.events import Envelope
from crm_shared.events.consumer import Handler
from identity.access.models import AuditRecord


async def store_staff_action(
    event: StaffActionRecorded, *, envelope: Envelope, session: AsyncSession
) -> None:
    """Append the action to the tenant's audit log (once, whatever the redeliveries)."""
    await session.execute(
        insert(AuditRecord)
        .values(
            id=event.action_id,
            tenant_id=envelope.tenantid,
            actor=event.actor,
            action=event.action,
            record_type=event.record_type,
            record_id=event.record_id,
            details=event.details,
            at=envelope.time,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


AUDIT_HANDLERS = [  # one per service that announces staff actions
    Handler(staff_action_event(service), store_staff_action)
    for service in ("identity", "engagement", "rewards")
]
