"""Staff actions in any service reach identity's audit log, through the outbox.

A service calls :func:`record_staff_action` in the transaction of the action itself, so the
record exists exactly when the action does; identity consumes the event into its append-only
``audit_log``. Details name what changed, never personal values (erasure cannot edit history).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import Principal
from crm_shared.events import Event, record_event


class StaffActionRecorded(Event):
    """Someone acting for the tenant changed something (``type`` is set per service)."""

    action_id: uuid.UUID
    actor: str
    action: str
    record_type: str
    record_id: str
    details: dict[str, Any]


@cache
def staff_action_event(service: str) -> type[StaffActionRecorded]:
    """The event class of ``service``: ``<service>.staff_action.recorded.v1``."""
    return type(
        f"{service.title()}StaffActionRecorded",
        (StaffActionRecorded,),
        {"type": f"{service}.staff_action.recorded.v1", "__module__": __name__},
    )


async def record_staff_action(
    *,
    session: AsyncSession,
    principal: Principal,
    action: str,
    record_type: str,
    record_id: uuid.UUID | str,
    details: dict[str, Any] | None = None,
) -> None:
    """Announce a staff action for the audit log, in the action's own transaction."""
    service = session.info["source"].rsplit("/", 1)[-1]
    event = staff_action_event(service)(
        action_id=uuid.uuid4(),
        actor=principal.actor,
        action=action,
        record_type=record_type,
        record_id=str(record_id),
        details=details or {},
    )
    await record_event(session, event, tenant_id=principal.tenant_id, subject=str(record_id))
