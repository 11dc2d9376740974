"""The audit log of staff actions: who did what, when, on which record.

Every service, identity included, announces staff actions with
``crm_shared.audit.record_staff_action`` in the action's own transaction (re-exported here);
identity's handler appends them to ``identity.audit_log``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.audit import record_staff_action
from crm_shared.pagination import keyset_page
from identity.access.models import AuditRecord


async def list_audit_records(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
    actor: str | None = None,
    action: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
) -> list[AuditRecord]:
    """The tenant's audit records, newest first, filtered, before a ``(at, id)`` position."""
    query = select(AuditRecord).where(AuditRecord.tenant_id == tenant_id)
    for column, value in (
        (AuditRecord.actor, actor),
        (AuditRecord.action, action),
        (AuditRecord.record_type, record_type),
        (AuditRecord.record_id, record_id),
    ):
        if value is not None:
            query = query.where(column == value)
    query = keyset_page(
        query, col(AuditRecord.at), col(AuditRecord.id), before, limit=limit, newest_first=True
    )
    return list(await session.exec(query))


__all__ = ["list_audit_records", "record_staff_action"]
