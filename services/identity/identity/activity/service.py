"""Keeping the activity projection: one upsert per figure, the newer event wins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

# figure -> its column and the column of the time it was set at
_FIGURES = {
    "value_cents": "value_at",
    "balance": "balance_at",
    "segment": "segment_at",
    "tier": "tier_at",
}
_TYPES = {"value_cents": "bigint", "balance": "integer", "segment": "text", "tier": "text"}


async def project_figure(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    figure: str,
    value: Any,
    at: datetime,
) -> None:
    """Set one figure of the customer's activity unless a newer event set it already."""
    stamp = _FIGURES[figure]
    await session.execute(
        text(
            f"INSERT INTO identity.customer_activity AS a (tenant_id, customer_id, {figure}, "
            f"{stamp}) VALUES (:t, :c, :v, :at) ON CONFLICT (tenant_id, customer_id) DO UPDATE "
            f"SET {figure} = EXCLUDED.{figure}, {stamp} = EXCLUDED.{stamp} "
            f"WHERE a.{stamp} IS NULL OR a.{stamp} <= EXCLUDED.{stamp}"
        ),
        {"t": tenant_id, "c": customer_id, "v": value, "at": at},
    )


async def project_interactions(
    *, session: AsyncSession, seen: Sequence[tuple[uuid.UUID, uuid.UUID, datetime]]
) -> None:
    """Move each customer's last interaction forward to the latest of ``(tenant, customer,
    occurred_at)`` (one statement for a batch; older ones change nothing)."""
    latest: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}
    for tenant_id, customer_id, occurred_at in seen:
        key = (tenant_id, customer_id)
        if key not in latest or latest[key] < occurred_at:
            latest[key] = occurred_at
    if not latest:
        return
    keys = sorted(latest)  # a fixed order: two batches never lock rows in opposite orders
    await session.execute(
        text(
            "INSERT INTO identity.customer_activity AS a (tenant_id, customer_id, "
            "last_interaction_at) SELECT * FROM unnest(CAST(:t AS uuid[]), CAST(:c AS uuid[]), "
            "CAST(:at AS timestamptz[])) ON CONFLICT (tenant_id, customer_id) DO UPDATE "
            "SET last_interaction_at = EXCLUDED.last_interaction_at "
            "WHERE a.last_interaction_at IS NULL "
            "OR a.last_interaction_at < EXCLUDED.last_interaction_at"
        ),
        {
            "t": [t for t, _ in keys],
            "c": [c for _, c in keys],
            "at": [latest[k] for k in keys],
        },
    )


async def project_figures(
    *,
    session: AsyncSession,
    figure: str,
    seen: Sequence[tuple[uuid.UUID, uuid.UUID, Any, datetime]],
) -> None:
    """Set ``figure`` from a batch of ``(tenant, customer, value, at)``: per customer the
    newest of the batch, unless a newer event set it already (one statement for a batch; a
    points movement per credited interaction would otherwise cost identity one statement each)."""
    latest: dict[tuple[uuid.UUID, uuid.UUID], tuple[Any, datetime]] = {}
    for tenant_id, customer_id, value, at in seen:
        key = (tenant_id, customer_id)
        if key not in latest or latest[key][1] <= at:
            latest[key] = (value, at)
    if not latest:
        return
    stamp = _FIGURES[figure]
    keys = sorted(latest)  # a fixed order: two batches never lock rows in opposite orders
    await session.execute(
        text(
            f"INSERT INTO identity.customer_activity AS a (tenant_id, customer_id, {figure}, "
            f"{stamp}) SELECT * FROM unnest(CAST(:t AS uuid[]), CAST(:c AS uuid[]), "
            f"CAST(:v AS {_TYPES[figure]}[]), CAST(:at AS timestamptz[])) "
            f"ON CONFLICT (tenant_id, customer_id) DO UPDATE "
            f"SET {figure} = EXCLUDED.{figure}, {stamp} = EXCLUDED.{stamp} "
            f"WHERE a.{stamp} IS NULL OR a.{stamp} <= EXCLUDED.{stamp}"
        ),
        {
            "t": [t for t, _ in keys],
            "c": [c for _, c in keys],
            "v": [latest[k][0] for k in keys],
            "at": [latest[k][1] for k in keys],
        },
    )
