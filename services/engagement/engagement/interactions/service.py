"""Reading interactions, and attaching them to customers as identity links their authors."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Uuid, and_, delete, func, literal, or_, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import lock_keys
from crm_shared.pagination import keyset_page, keyset_pages
from engagement.interactions.models import Interaction, InteractionTracker, ProfileLink

Position = tuple[datetime, uuid.UUID]


async def count_interactions(
    *, session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many interactions each of ``customer_ids`` has (absent ones have none)."""
    rows = await session.execute(
        select(Interaction.customer_id, func.count())
        .where(Interaction.tenant_id == tenant_id, col(Interaction.customer_id).in_(customer_ids))
        .group_by(col(Interaction.customer_id))
    )
    return {customer_id: int(count) for customer_id, count in rows.all()}


async def get_interaction(
    *, session: AsyncSession, tenant_id: uuid.UUID, interaction_id: uuid.UUID
) -> Interaction | None:
    """One interaction of the tenant, or None."""
    found: Interaction | None = (
        await session.exec(
            select(Interaction).where(
                Interaction.tenant_id == tenant_id, Interaction.id == interaction_id
            )
        )
    ).first()
    return found


async def customers_interactions(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    limit: int,
    before: Position | None,
) -> dict[uuid.UUID, list[Interaction]]:
    """Each customer's first ``limit`` interactions, newest first (by the platform's time,
    then id), after ``before``; one query for all of them (a lateral join that walks each
    customer's part of the ``interactions_customer_newest`` index)."""
    return await keyset_pages(
        session,
        Interaction,
        select(Interaction).where(Interaction.tenant_id == tenant_id),
        owner=col(Interaction.customer_id),
        owners=customer_ids,
        at=col(Interaction.created_at),
        id_=col(Interaction.id),
        position=before,
        limit=limit,
        newest_first=True,
    )


# What a reader of interactions is shown: every column but the platform's raw payload.
SHOWN = tuple(c for c in Interaction.__table__.columns if c.key != "raw")  # type: ignore[attr-defined]


async def customers_interaction_rows(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Sequence[uuid.UUID],
    limit: int,
    before: Position | None,
) -> dict[uuid.UUID, list[Any]]:
    """:func:`customers_interactions` as plain rows (attributes named as ``Interaction``'s,
    without ``raw``): no ORM object and no JSON payload decoded per row, for the graph's
    customer pages (a page of 20 customers reads 400 of them)."""
    if not customer_ids:
        return {}
    wanted = select(func.unnest(literal(list(customer_ids), ARRAY(Uuid))).label("owner")).subquery(
        "wanted"
    )
    page = keyset_page(
        select(*SHOWN).where(
            Interaction.tenant_id == tenant_id, col(Interaction.customer_id) == wanted.c.owner
        ),
        col(Interaction.created_at),
        col(Interaction.id),
        before,
        limit=limit,
        newest_first=True,
    ).lateral("page")
    found: dict[uuid.UUID, list[Any]] = {}
    for row in await session.execute(select(page).select_from(wanted).join(page, true())):
        found.setdefault(row.customer_id, []).append(row)
    return found


async def thread_interactions(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    channel: str,
    thread_id: str,
    limit: int,
    after: Position | None,
) -> list[Interaction]:
    """A conversation in reading order: oldest first (by the platform's time, then id)."""
    query = select(Interaction).where(
        Interaction.tenant_id == tenant_id,
        Interaction.channel == channel,
        Interaction.thread_id == thread_id,
    )
    if after is not None:
        at, id_ = after
        query = query.where(
            or_(
                col(Interaction.created_at) > at,
                and_(col(Interaction.created_at) == at, col(Interaction.id) > id_),
            )
        )
    query = query.order_by(col(Interaction.created_at), col(Interaction.id))
    return list(await session.exec(query.limit(limit)))


async def tracker_ids(
    *, session: AsyncSession, tenant_id: uuid.UUID, interaction_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The trackers each interaction matched."""
    rows = await session.exec(
        select(InteractionTracker).where(
            InteractionTracker.tenant_id == tenant_id,
            col(InteractionTracker.interaction_id).in_(interaction_ids),
        )
    )
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in rows:
        found.setdefault(row.interaction_id, []).append(row.tracker_id)
    return found


def author_lock_key(tenant_id: uuid.UUID, channel: str, platform_user_id: str) -> str:
    """The advisory lock that orders an author's ingestion and their (un)link.

    Ingestion holds it for every author of a batch from before it reads their links until it
    commits; a link or unlink takes it before it writes. Without it, a link committed while a
    batch of the author's items was being stored would miss them: the batch read no link, and
    the link's update did not see the batch's uncommitted rows.
    """
    return f"engagement.author:{tenant_id}:{channel}:{platform_user_id}"


async def link_profile(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    channel: str,
    platform_user_id: str,
    customer_id: uuid.UUID,
    link_id: uuid.UUID | None,
) -> int:
    """Remember the link and attach the author's history to the customer; rows attached."""
    await lock_keys(session, [author_lock_key(tenant_id, channel, platform_user_id)])
    await session.execute(
        insert(ProfileLink)
        .values(
            tenant_id=tenant_id,
            channel=channel,
            platform_user_id=platform_user_id,
            customer_id=customer_id,
            link_id=link_id,
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "channel", "platform_user_id"],
            set_={"customer_id": customer_id, "link_id": link_id, "linked_at": func.now()},
        )
    )
    result = await session.execute(
        update(Interaction)
        .where(
            col(Interaction.tenant_id) == tenant_id,
            col(Interaction.channel) == channel,
            col(Interaction.author_platform_user_id) == platform_user_id,
        )
        .values(customer_id=customer_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def unlink_profile(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    channel: str,
    platform_user_id: str,
    customer_id: uuid.UUID,
) -> int:
    """Forget the link and detach the author's history from that customer; rows detached."""
    await lock_keys(session, [author_lock_key(tenant_id, channel, platform_user_id)])
    await session.execute(
        delete(ProfileLink).where(
            col(ProfileLink.tenant_id) == tenant_id,
            col(ProfileLink.channel) == channel,
            col(ProfileLink.platform_user_id) == platform_user_id,
            col(ProfileLink.customer_id) == customer_id,
        )
    )
    result = await session.execute(
        update(Interaction)
        .where(
            col(Interaction.tenant_id) == tenant_id,
            col(Interaction.channel) == channel,
            col(Interaction.author_platform_user_id) == platform_user_id,
            col(Interaction.customer_id) == customer_id,
        )
        .values(customer_id=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)
