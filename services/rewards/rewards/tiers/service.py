"""Tier definitions and the tier of each customer.

A customer is in the highest-level tier whose threshold they reach on its basis over its
rolling window: points earned (earn entries, less what refunds took back; never the balance)
or interactions recorded. Recomputed in the transaction that credits rule points or records an
interaction, and by a periodic job (``recompute_all``) as windows roll past old activity. A
change publishes ``rewards.tier.changed.v1``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound
from crm_shared.events import record_event
from rewards.tiers.events import TierChanged
from rewards.tiers.models import CustomerTier, Tier, TierBasis

MAX_TIERS = 20


class TierDefinition(BaseModel):
    """What defines a tier (validated input of defineTier/updateTier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=60)]
    level: Annotated[int, Field(ge=1, le=100)]
    basis: TierBasis
    threshold: Annotated[int, Field(ge=0, le=1_000_000_000)]
    window_days: Annotated[int, Field(ge=1, le=3660)] = 365
    multiplier: Annotated[Decimal, Field(ge=Decimal("0.1"), le=Decimal("10"), decimal_places=2)] = (
        Decimal("1")
    )
    benefits: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20)
    ] = []

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


# Definitions ------------------------------------------------------------------------------


async def list_tiers(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[Tier]:
    """The tenant's tiers in use, lowest level first."""
    rows = await session.exec(
        select(Tier)
        .where(Tier.tenant_id == tenant_id, col(Tier.removed_at).is_(None))
        .order_by(col(Tier.level))
    )
    return list(rows.all())


async def _check_free(
    session: AsyncSession, tenant_id: uuid.UUID, definition: TierDefinition, own: uuid.UUID | None
) -> None:
    for tier in await list_tiers(session, tenant_id=tenant_id):
        if tier.id == own:
            continue
        if tier.name.lower() == definition.name.lower():
            raise Conflict("input.name: another tier has this name", field="input.name")
        if tier.level == definition.level:
            raise Conflict("input.level: another tier has this level", field="input.level")


async def define_tier(
    *, session: AsyncSession, tenant_id: uuid.UUID, definition: TierDefinition
) -> Tier:
    """A new tier (the same definition again returns it); CONFLICT on a taken name or level."""
    # One tenant's definitions change one at a time (names and levels stay unique).
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('rewards.tiers:' || :t, 0))"),
        {"t": str(tenant_id)},
    )
    existing = await list_tiers(session, tenant_id=tenant_id)
    # Defining the same tier again (a retried request) returns it; only a different tier
    # with its name or level conflicts.
    for tier in existing:
        if tier.name.lower() == definition.name.lower() and _same(tier, definition):
            return tier
    if len(existing) >= MAX_TIERS:
        raise BadUserInput(f"input: at most {MAX_TIERS} tiers", field="input")
    await _check_free(session, tenant_id, definition, None)
    tier = Tier.model_validate({"tenant_id": tenant_id, **_columns(definition)})
    session.add(tier)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            "input.name: another tier has this name or level", field="input.name"
        ) from None
    return tier


def _same(tier: Tier, definition: TierDefinition) -> bool:
    return all(getattr(tier, name) == value for name, value in _columns(definition).items())


def _columns(definition: TierDefinition) -> dict[str, object]:
    return {
        "name": definition.name,
        "level": definition.level,
        "basis": definition.basis.value,
        "threshold": definition.threshold,
        "window_days": definition.window_days,
        "multiplier": definition.multiplier,
        "benefits": list(definition.benefits),
    }


async def _get(session: AsyncSession, tenant_id: uuid.UUID, tier_id: uuid.UUID) -> Tier:
    tier = (
        await session.exec(
            select(Tier)
            .where(Tier.tenant_id == tenant_id, Tier.id == tier_id, col(Tier.removed_at).is_(None))
            .with_for_update()
        )
    ).first()
    if tier is None:
        raise NotFound("id: no such tier", field="id")
    return tier


async def update_tier(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    tier_id: uuid.UUID,
    definition: TierDefinition,
) -> Tier:
    """Change a tier; customers move on their next recomputation (the periodic job at latest)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('rewards.tiers:' || :t, 0))"),
        {"t": str(tenant_id)},
    )
    tier = await _get(session, tenant_id, tier_id)
    await _check_free(session, tenant_id, definition, tier_id)
    for name, value in _columns(definition).items():
        setattr(tier, name, value)
    tier.updated_at = utcnow()
    session.add(tier)
    await session.flush()
    return tier


async def remove_tier(*, session: AsyncSession, tenant_id: uuid.UUID, tier_id: uuid.UUID) -> Tier:
    """Stop using a tier; its customers move on their next recomputation."""
    tier = await _get(session, tenant_id, tier_id)
    tier.removed_at = utcnow()
    session.add(tier)
    await session.flush()
    return tier


# A customer's tier ------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A customer's tier and how far they are on each basis."""

    tier: Tier | None
    since: datetime | None
    next_tier: Tier | None
    # The customer's count on the next tier's basis and window.
    progress: int | None


def qualifying_tier(tiers: Sequence[Tier], counts: dict[tuple[str, int], int]) -> Tier | None:
    """The highest-level tier whose threshold ``counts`` (by basis and window) reach."""
    reached = [t for t in tiers if counts.get((t.basis, t.window_days), 0) >= t.threshold]
    return max(reached, key=lambda t: t.level, default=None)


async def _count(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    basis: str,
    since: datetime,
) -> int:
    if basis == TierBasis.POINTS.value:
        # Earned: earn entries, less the refunds' take-backs (keyed refund:...), in the window.
        sql = """
            SELECT coalesce(sum(p.amount), 0) FROM rewards.journal_entries e
              JOIN rewards.postings p ON p.entry_id = e.id
              JOIN rewards.accounts a ON a.id = p.account_id AND a.kind = 'customer'
             WHERE e.tenant_id = :t AND e.customer_id = :c AND e.created_at >= :since
               AND (e.kind = 'earn' OR e.idempotency_key LIKE 'refund:%')"""
    else:
        sql = """
            SELECT count(*) FROM rewards.trigger_events
             WHERE tenant_id = :t AND customer_id = :c AND occurred_at >= :since
               AND type = 'engagement.interaction.recorded.v1'"""
    found = await session.execute(text(sql), {"t": tenant_id, "c": customer_id, "since": since})
    return max(0, int(found.scalar_one()))


async def _counts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    tiers: Sequence[Tier],
    now: datetime,
) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    for key in {(t.basis, t.window_days) for t in tiers}:
        since = now - timedelta(days=key[1])
        counts[key] = await _count(session, tenant_id, customer_id, key[0], since)
    return counts


async def recompute(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    now: datetime | None = None,
) -> TierChanged | None:
    """Put the customer in the tier they qualify for now; the change event, if it changed."""
    now = now or utcnow()
    tiers = await list_tiers(session, tenant_id=tenant_id)
    existing = await _lock_row(session, tenant_id, customer_id, create=bool(tiers))
    if existing is None:
        return None
    tier = qualifying_tier(tiers, await _counts(session, tenant_id, customer_id, tiers, now))
    new_id = tier.id if tier else None
    existing.computed_at = now
    if existing.tier_id == new_id:
        session.add(existing)
        return None
    previous = (
        (await session.exec(select(Tier.name).where(Tier.id == existing.tier_id))).first()
        if existing.tier_id
        else None
    )
    existing.tier_id = new_id
    existing.since = now
    session.add(existing)
    event = TierChanged(
        customer_id=customer_id,
        previous=previous,
        tier=tier.name if tier else None,
        tier_id=new_id,
    )
    await record_event(session, event, tenant_id=tenant_id, subject=str(customer_id))
    return event


async def _lock_row(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, *, create: bool
) -> CustomerTier | None:
    if create:
        now = utcnow()
        await session.execute(
            insert(CustomerTier)
            .values(
                tenant_id=tenant_id,
                customer_id=customer_id,
                tier_id=None,
                since=now,
                computed_at=now,
            )
            .on_conflict_do_nothing()
        )
    return (
        await session.exec(
            select(CustomerTier)
            .where(CustomerTier.tenant_id == tenant_id, CustomerTier.customer_id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


async def standings(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    now: datetime | None = None,
) -> dict[uuid.UUID, Standing]:
    """Each customer's tier, since when, and their progress towards the next one."""
    now = now or utcnow()
    tiers = await list_tiers(session, tenant_id=tenant_id)
    if not tiers:
        return {}
    by_id = {t.id: t for t in tiers}
    rows = await session.exec(
        select(CustomerTier).where(
            CustomerTier.tenant_id == tenant_id, col(CustomerTier.customer_id).in_(customer_ids)
        )
    )
    by_customer = {row.customer_id: row for row in rows.all()}
    found: dict[uuid.UUID, Standing] = {}
    for customer_id in customer_ids:
        row = by_customer.get(customer_id)
        tier = by_id.get(row.tier_id) if row and row.tier_id else None
        above = [t for t in tiers if tier is None or t.level > tier.level]
        next_tier = min(above, key=lambda t: t.level, default=None)
        progress = None
        if next_tier is not None:
            since = now - timedelta(days=next_tier.window_days)
            progress = await _count(session, tenant_id, customer_id, next_tier.basis, since)
        found[customer_id] = Standing(
            tier=tier,
            since=row.since if row and tier else None,
            next_tier=next_tier,
            progress=progress,
        )
    return found


async def recompute_all(db: Database, *, now: datetime | None = None, batch: int = 200) -> int:
    """Recompute every customer of every tenant with tiers (windows roll past old activity);
    how many changed. One transaction per customer, so a replica running it too only waits."""
    now = now or utcnow()
    changed = 0
    async with db.session() as session:
        tenants = (
            await session.exec(
                select(Tier.tenant_id).where(col(Tier.removed_at).is_(None)).distinct()
            )
        ).all()
        # Tenants whose tiers were all removed still have customers to move out of them.
        tenants = list(
            {
                *tenants,
                *(
                    await session.exec(
                        select(CustomerTier.tenant_id)
                        .where(col(CustomerTier.tier_id).is_not(None))
                        .distinct()
                    )
                ).all(),
            }
        )
    for tenant_id in tenants:
        after: uuid.UUID | None = None
        while True:
            async with db.session() as session:
                query = text(
                    "SELECT customer_id FROM rewards.accounts WHERE tenant_id = :t"
                    " AND kind = 'customer' AND (CAST(:after AS uuid) IS NULL"
                    " OR customer_id > CAST(:after AS uuid)) ORDER BY customer_id LIMIT :n"
                )
                customers = [
                    c
                    for (c,) in (
                        await session.execute(query, {"t": tenant_id, "after": after, "n": batch})
                    ).all()
                ]
            if not customers:
                break
            for customer_id in customers:
                async with db.session() as session, session.begin():
                    if await recompute(
                        session, tenant_id=tenant_id, customer_id=customer_id, now=now
                    ):
                        changed += 1
            after = customers[-1]
    return changed
