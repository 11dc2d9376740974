"""Revocation of issued tokens: per principal, the moment before which its tokens are refused.

Set when a staff user is deactivated or changes role and when an API client is revoked (in the
change's own transaction, beside its audit event); listed at ``GET /auth/revocations`` for the
gateway and every subgraph (``crm_shared.auth_revocation``), which refuse such tokens within
seconds instead of letting them run until they expire.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import PrincipalKind

_REVOKE = text(
    """
    INSERT INTO identity.token_revocations AS r (tenant_id, kind, subject, not_before, reason)
    VALUES (:tenant_id, :kind, :subject, clock_timestamp(), :reason)
    ON CONFLICT (tenant_id, kind, subject)
    DO UPDATE SET not_before = clock_timestamp(), reason = excluded.reason
    """
)

_RECENT = text(
    """
    SELECT tenant_id, kind, subject, extract(epoch FROM not_before) AS not_before
    FROM identity.token_revocations
    WHERE not_before > now() - make_interval(secs => :horizon)
    """
)


async def revoke_tokens(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    kind: PrincipalKind,
    subject: str,
    reason: str,
) -> None:
    """Refuse every token of this principal issued until now (new ones are unaffected)."""
    await session.execute(
        _REVOKE, {"tenant_id": tenant_id, "kind": kind, "subject": subject, "reason": reason}
    )


async def recent_revocations(session: AsyncSession, *, horizon_seconds: float) -> dict[str, Any]:
    """The revocations younger than ``horizon_seconds`` (older ones concern expired tokens
    only), as ``crm_shared.auth_revocation.RevocationList`` reads them."""
    rows = (await session.execute(_RECENT, {"horizon": horizon_seconds})).all()
    return {
        "revocations": [
            {"tid": str(tenant), "typ": kind, "sub": subject, "nbf": float(not_before)}
            for tenant, kind, subject, not_before in rows
        ]
    }
