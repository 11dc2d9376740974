"""Storing normalized items: one row per platform item, understood, matched and announced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import utcnow
from crm_shared.events import record_event
from engagement.care import service as care
from engagement.care.service import CarePolicy
from engagement.ingestion.normalized import AuthorRef, NormalizedItem, Report
from engagement.interactions.events import AuthorSeen, InteractionRecorded
from engagement.interactions.models import Interaction, InteractionTracker, ProfileLink
from engagement.listening import service as listening
from engagement.listening.models import Tracker
from engagement.segments import service as segments
from engagement.trends import service as trends
from engagement.understanding import Understanding, understand

Outcome = Literal["accepted", "duplicate", "updated"]


@dataclass(frozen=True)
class Stored:
    """What became of one item, and its row."""

    outcome: Outcome
    interaction: Interaction
    tracker_ids: tuple[uuid.UUID, ...] = ()


async def ingest(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    items: Sequence[NormalizedItem],
    min_confidence: float,
    policy: CarePolicy | None = None,
) -> tuple[Report, list[Stored]]:
    """Store ``items`` in the caller's transaction; the counts and each item's row.

    Care follows every new interaction in the same transaction (cases, the brand's replies)
    by ``policy``, this process's settings by default.
    """
    if not items:
        return Report(), []
    # Language and sentiment are CPU work: keep the event loop free meanwhile.
    understood = await asyncio.to_thread(
        lambda: [understand(i.text, min_confidence=min_confidence) for i in items]
    )
    trackers = await listening.list_trackers(session=session, tenant_id=tenant_id)
    links = await _links(session, tenant_id, items)
    brand = await care.brand_account_keys(session=session, tenant_id=tenant_id)
    policy = policy or care.default_policy()
    report = Report()
    stored: list[Stored] = []
    for item, understanding in zip(items, understood, strict=True):
        result = await _store(
            session, tenant_id, item, understanding, trackers, links, brand, policy
        )
        if result.outcome == "accepted":
            report.accepted += 1
        elif result.outcome == "updated":
            report.updated += 1
        else:
            report.duplicates += 1
        stored.append(result)
    # Only new items count and reclassify: a duplicate or an edit is not more activity.
    new = [s for s in stored if s.outcome == "accepted"]
    await trends.count_new(
        session=session,
        tenant_id=tenant_id,
        interactions=[
            trends.Counted(s.interaction.created_at, s.tracker_ids, s.interaction.text) for s in new
        ],
    )
    await segments.refresh(
        session=session,
        tenant_id=tenant_id,
        customer_ids=sorted({c for s in new if (c := s.interaction.customer_id) is not None}),
    )
    return report, stored


async def _links(
    session: AsyncSession, tenant_id: uuid.UUID, items: Sequence[NormalizedItem]
) -> dict[tuple[str, str], uuid.UUID]:
    """The customers linked to the items' authors, by (channel, platform user id)."""
    keys = {(i.channel, i.author.platform_user_id) for i in items if i.author is not None}
    if not keys:
        return {}
    rows = await session.exec(
        select(ProfileLink).where(
            ProfileLink.tenant_id == tenant_id,
            tuple_(col(ProfileLink.channel), col(ProfileLink.platform_user_id)).in_(list(keys)),
        )
    )
    return {(r.channel, r.platform_user_id): r.customer_id for r in rows}


async def _store(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    item: NormalizedItem,
    understanding: Understanding,
    trackers: Sequence[Tracker],
    links: dict[tuple[str, str], uuid.UUID],
    brand: frozenset[tuple[str, str]],
    policy: care.CarePolicy,
) -> Stored:
    author = item.author
    customer_id = links.get((item.channel, author.platform_user_id)) if author else None
    now = utcnow()
    values = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "channel": item.channel,
        "platform_id": item.platform_id,
        "kind": item.kind,
        "thread_id": item.thread_id,
        "parent_id": item.parent_id,
        "author_platform_user_id": author.platform_user_id if author else None,
        "author_handle": author.handle if author else None,
        "author_display_name": author.display_name if author else None,
        "customer_id": customer_id,
        "text": item.text,
        "language": understanding.language,
        "sentiment_score": understanding.sentiment_score,
        "sentiment_label": understanding.sentiment_label,
        "rating": item.rating,
        "by_brand": author is not None and (item.channel, author.platform_user_id) in brand,
        "created_at": item.created_at,
        "received_at": now,
        "edited_at": item.edited_at,
        "raw": item.raw or {},
    }
    inserted = await session.execute(
        insert(Interaction)
        .values(**values)
        .on_conflict_do_nothing(constraint="interactions_platform_item")
        .returning(col(Interaction.id))
    )
    if inserted.scalar_one_or_none() is None:
        return await _known(session, tenant_id, item, understanding, trackers)
    interaction = Interaction.model_validate(values)
    matched = listening.matching(item.text, trackers)
    await _set_matches(session, tenant_id, interaction.id, matched)
    if author is not None and await _first_sighting(session, tenant_id, item.channel, author, now):
        await record_event(
            session,
            AuthorSeen(
                channel=item.channel,
                platform_user_id=author.platform_user_id,
                handle=author.handle,
                display_name=author.display_name,
                followers=author.followers,
                verified=author.verified,
                seen_at=now,
            ),
            tenant_id=tenant_id,
            subject=f"{item.channel}:{author.platform_user_id}",
        )
    await record_event(
        session,
        InteractionRecorded(
            interaction_id=interaction.id,
            customer_id=customer_id,
            channel=item.channel,
            kind=item.kind,
            platform_id=item.platform_id,
            thread_id=item.thread_id,
            platform_user_id=author.platform_user_id if author else None,
            handle=author.handle if author else None,
            sentiment=understanding.sentiment_score,
            sentiment_label=understanding.sentiment_label,
            language=understanding.language,
            occurred_at=item.created_at,
            tracker_ids=matched,
            brand_mentioned=bool(matched),
            rating=item.rating,
        ),
        tenant_id=tenant_id,
        subject=str(customer_id) if customer_id else str(interaction.id),
    )
    await care.on_interaction_recorded(
        session=session,
        interaction=interaction,
        followers=author.followers if author else None,
        brand_mentioned=bool(matched),
        policy=policy,
    )
    return Stored("accepted", interaction, tuple(matched))


async def _known(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    item: NormalizedItem,
    understanding: Understanding,
    trackers: Sequence[Tracker],
) -> Stored:
    """The item is already stored: a changed text updates it, the same text is a duplicate."""
    found = await session.exec(
        select(Interaction)
        .where(
            Interaction.tenant_id == tenant_id,
            Interaction.channel == item.channel,
            Interaction.platform_id == item.platform_id,
        )
        .with_for_update()
    )
    interaction = found.one()
    if item.text == interaction.text:
        return Stored("duplicate", interaction)
    interaction.text = item.text
    interaction.edited_at = item.edited_at or utcnow()
    interaction.language = understanding.language
    interaction.sentiment_score = understanding.sentiment_score
    interaction.sentiment_label = understanding.sentiment_label
    interaction.raw = item.raw or {}
    session.add(interaction)
    await session.flush()
    await session.execute(
        delete(InteractionTracker).where(col(InteractionTracker.interaction_id) == interaction.id)
    )
    await _set_matches(session, tenant_id, interaction.id, listening.matching(item.text, trackers))
    return Stored("updated", interaction)


async def _set_matches(
    session: AsyncSession, tenant_id: uuid.UUID, interaction_id: uuid.UUID, ids: list[uuid.UUID]
) -> None:
    if ids:
        await session.execute(
            insert(InteractionTracker).values(
                [
                    {"interaction_id": interaction_id, "tracker_id": t, "tenant_id": tenant_id}
                    for t in ids
                ]
            )
        )


async def _first_sighting(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    channel: str,
    author: AuthorRef,
    now: datetime,
) -> bool:
    """Record the author as seen; True the first time in the tenant."""
    schema = session.info["schema"]
    result = await session.execute(
        text(
            f"INSERT INTO {schema}.authors AS a (tenant_id, channel, platform_user_id, handle, "
            "display_name, followers, first_seen_at, last_seen_at) "
            "VALUES (:tenant, :channel, :user, :handle, :name, :followers, :now, :now) "
            "ON CONFLICT (tenant_id, channel, platform_user_id) DO UPDATE SET "
            "handle = COALESCE(EXCLUDED.handle, a.handle), "
            "display_name = COALESCE(EXCLUDED.display_name, a.display_name), "
            "followers = COALESCE(EXCLUDED.followers, a.followers), "
            "last_seen_at = EXCLUDED.last_seen_at "
            "RETURNING (xmax = 0) AS inserted"
        ),
        {
            "tenant": tenant_id,
            "channel": channel,
            "user": author.platform_user_id,
            "handle": author.handle,
            "name": author.display_name,
            "followers": author.followers,
            "now": now,
        },
    )
    return bool(result.scalar_one())
