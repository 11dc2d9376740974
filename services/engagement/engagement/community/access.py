"""What the community's resolvers share: who takes part, the staff audit, cursors."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.audit import record_staff_action
from crm_shared.auth import Principal
from crm_shared.errors import Forbidden
from crm_shared.graphql import CrmInfo
from crm_shared.pagination import (
    decode_cursor,
)


def participant(info: CrmInfo) -> tuple[Principal, uuid.UUID]:
    """The customer taking part, from their own token; FORBIDDEN for anyone else (the field
    checks community:participate first)."""
    principal = info.context.principal
    if principal.kind != "customer" or principal.customer_id is None:
        raise Forbidden("only a customer takes part, with their own customer token")
    return principal, principal.customer_id


async def audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    record_type: str,
    record_id: uuid.UUID,
    details: dict[str, str | int | None] | None = None,
) -> None:
    if principal.kind == "staff":
        await record_staff_action(
            session=session,
            principal=principal,
            action=action,
            record_type=record_type,
            record_id=record_id,
            details=dict(details or {}),
        )


def position(after: str | None) -> tuple[datetime, uuid.UUID] | None:
    return decode_cursor(after) if after is not None else None
