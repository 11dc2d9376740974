"""Storing normalized items: one row per platform item, understood, matched and announced."""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import TextClause, text
from sqlalchemy.orm import instrumentation
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import lock_keys, utcnow
from crm_shared.errors import Conflict, NotFound
from crm_shared.events import Event, record_events
from engagement.care import service as care
from engagement.care.service import CarePolicy
from engagement.community.reuse import service as reuse
from engagement.ingestion.normalized import AuthorRef, NormalizedItem, Report
from engagement.interactions.events import AuthorSeen, InteractionRecorded
from engagement.interactions.models import Interaction
from engagement.interactions.service import author_lock_key
from engagement.listening import service as listening
from engagement.listening.models import Tracker
from engagement.segments import service as segments
from engagement.trends import service as trends
from engagement.understanding import Understanding, understand

Outcome = Literal["accepted", "duplicate", "updated"]


@dataclass(frozen=True)
class Analysis:
    """What one item's text says: language and sentiment, and the trackers it matches."""

    understanding: Understanding
    tracker_ids: tuple[uuid.UUID, ...]


def analyse_items(
    items: Sequence[NormalizedItem], trackers: Sequence[Tracker], *, min_confidence: float
) -> list[Analysis]:
    """Each item's :class:`Analysis`: CPU work only, no database (run it in a worker thread)."""
    return [
        Analysis(
            understand(item.text, min_confidence=min_confidence),
            tuple(listening.matching(item.text, trackers)),
        )
        for item in items
    ]


async def analyse(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    items: Sequence[NormalizedItem],
    min_confidence: float,
) -> list[Analysis]:
    """Read the tenant's trackers and analyse ``items`` in a worker thread.

    Call it before the storing transaction opens, with a session of its own: the analysis
    costs more than the storing, and inside the transaction it would hold the batch's author
    locks (and a connection) meanwhile. A tracker created in between matches from the next
    batch on, as one created just after the commit would.
    """
    if not items:
        return []
    trackers = await listening.list_trackers(session=session, tenant_id=tenant_id)
    return await asyncio.to_thread(analyse_items, items, trackers, min_confidence=min_confidence)


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
    analysis: Sequence[Analysis] | None = None,
) -> tuple[Report, list[Stored]]:
    """Store ``items`` in the caller's transaction; the counts and each item's row.

    ``analysis`` (from :func:`analyse`, one per item, made before the transaction) is done
    here when not given. The batch costs a fixed number of statements, not a few per item:
    new items are inserted in one statement, their tracker matches in another, their
    authors upserted in one, their graph edges in one, and their events written to the
    outbox in one. Items already stored (or repeated within the batch) are then taken in
    order as edits or duplicates (:func:`_known`), also in a fixed number of statements.
    Care follows every new interaction in the same transaction (cases, the brand's replies)
    by ``policy``, this process's settings by default.
    """
    if not items:
        return Report(), []
    if analysis is None:
        analysis = await analyse(
            session=session, tenant_id=tenant_id, items=items, min_confidence=min_confidence
        )
    links = await _links(session, tenant_id, items)
    brand = await care.brand_account_keys(session=session, tenant_id=tenant_id)
    policy = policy or care.default_policy()
    now = utcnow()

    # The first occurrence of each platform item is a candidate for a new row.
    first: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        first.setdefault((item.channel, item.platform_id), index)
    rows = {
        index: _row(tenant_id, items[index], analysis[index].understanding, links, brand, now)
        for index in first.values()
    }
    inserted = await _insert_new(session, tenant_id, now, list(rows.values()))

    results: dict[int, Stored] = {}
    for index, values in rows.items():
        if values["id"] in inserted:
            results[index] = Stored("accepted", _interaction(values), analysis[index].tracker_ids)
    new = [(items[i], results[i]) for i in sorted(results)]
    await _set_all_matches(session, tenant_id, [s for _, s in new])
    await _write_edges(session, tenant_id, [(i, s.interaction) for i, s in new])
    await record_events(
        session, await _announcements(session, tenant_id, new, now=now), tenant_id=tenant_id
    )
    await care.on_interactions_recorded(
        session=session,
        recorded=[
            care.Recorded(
                s.interaction, i.author.followers if i.author else None, bool(s.tracker_ids)
            )
            for i, s in new
        ],
        policy=policy,
    )
    await _answer_reuse_requests(session, tenant_id, [s.interaction for _, s in new])
    # What was stored before, or comes twice in this batch: an edit or a duplicate, in order.
    await _known(
        session,
        tenant_id,
        [(i, items[i], analysis[i]) for i in range(len(items)) if i not in results],
        results,
    )

    report = Report()
    stored = [results[index] for index in range(len(items))]
    for result in stored:
        if result.outcome == "accepted":
            report.accepted += 1
        elif result.outcome == "updated":
            report.updated += 1
        else:
            report.duplicates += 1
    # Only new items count and reclassify: a duplicate or an edit is not more activity.
    await trends.count_new(
        session=session,
        tenant_id=tenant_id,
        interactions=[
            trends.Counted(s.interaction.created_at, s.tracker_ids, s.interaction.text)
            for _, s in new
        ],
    )
    await segments.refresh(
        session=session,
        tenant_id=tenant_id,
        customer_ids=sorted({c for _, s in new if (c := s.interaction.customer_id) is not None}),
    )
    return report, stored


async def _links(
    session: AsyncSession, tenant_id: uuid.UUID, items: Sequence[NormalizedItem]
) -> dict[tuple[str, str], uuid.UUID]:
    """The customers linked to the items' authors, by (channel, platform user id).

    The authors stay locked until the transaction ends, so that no link or unlink of theirs
    commits in between (``interactions.service.author_lock_key``).
    """
    keys = {(i.channel, i.author.platform_user_id) for i in items if i.author is not None}
    if not keys:
        return {}
    await lock_keys(session, [author_lock_key(tenant_id, c, u) for c, u in keys])
    pairs = list(keys)
    # Arrays, not an IN list of pairs: the statement's text (and so its prepared form) is
    # the same whatever the batch's authors.
    rows = await session.execute(
        text(
            f"SELECT l.channel, l.platform_user_id, l.customer_id "
            f"FROM {session.info['schema']}.profile_links AS l "
            "JOIN unnest(CAST(:channels AS text[]), CAST(:users AS text[])) "
            "AS k(channel, platform_user_id) USING (channel, platform_user_id) "
            "WHERE l.tenant_id = CAST(:tenant AS uuid)"
        ),
        {"tenant": tenant_id, "channels": [c for c, _ in pairs], "users": [u for _, u in pairs]},
    )
    return {(r.channel, r.platform_user_id): r.customer_id for r in rows}


def _row(
    tenant_id: uuid.UUID,
    item: NormalizedItem,
    understanding: Understanding,
    links: dict[tuple[str, str], uuid.UUID],
    brand: frozenset[tuple[str, str]],
    now: datetime,
) -> dict[str, Any]:
    """The interaction row of a new item."""
    author = item.author
    return {
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
        "customer_id": links.get((item.channel, author.platform_user_id)) if author else None,
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


# The columns of a new interaction given as arrays, and their types.
_NEW_COLUMNS = (
    ("id", "uuid"),
    ("channel", "text"),
    ("platform_id", "text"),
    ("kind", "text"),
    ("thread_id", "text"),
    ("parent_id", "text"),
    ("author_platform_user_id", "text"),
    ("author_handle", "text"),
    ("author_display_name", "text"),
    ("customer_id", "uuid"),
    ("text", "text"),
    ("language", "text"),
    ("sentiment_score", "float8"),
    ("sentiment_label", "text"),
    ("rating", "smallint"),
    ("by_brand", "boolean"),
    ("created_at", "timestamptz"),
    ("edited_at", "timestamptz"),
    ("raw", "text"),
)


@functools.cache
def _insert_new_statement(schema: str) -> TextClause:
    names = [name for name, _ in _NEW_COLUMNS]
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _NEW_COLUMNS)
    values = ", ".join("CAST(raw AS jsonb)" if name == "raw" else name for name in names)
    return text(
        f"INSERT INTO {schema}.interactions ({', '.join(names)}, tenant_id, received_at) "
        f"SELECT {values}, CAST(:tenant AS uuid), CAST(:now AS timestamptz) "
        f"FROM unnest({arrays}) AS t({', '.join(names)}) "
        "ON CONFLICT ON CONSTRAINT interactions_platform_item DO NOTHING RETURNING id"
    )


async def _insert_new(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime, rows: list[dict[str, Any]]
) -> set[uuid.UUID]:
    """Insert the rows whose platform item is not stored yet; the ids of those inserted.

    One statement over arrays (``unnest``): its cost hardly grows with the rows, where a
    multi-row ``VALUES`` has SQLAlchemy bind and render every value of every row.
    """
    if not rows:
        return set()
    params: dict[str, Any] = {"tenant": tenant_id, "now": now}
    for name, _ in _NEW_COLUMNS:
        params[name] = [row[name] for row in rows]
    params["raw"] = [orjson.dumps(raw).decode() for raw in params["raw"]]
    result = await session.execute(_insert_new_statement(session.info["schema"]), params)
    return set(result.scalars())


# Builds instances the way the ORM builds the ones it loads: straight into their __dict__.
_INTERACTIONS = instrumentation.manager_of_class(Interaction)
_COLUMNS = frozenset(Interaction.model_fields)


def _interaction(values: dict[str, Any]) -> Interaction:
    """The new row as an :class:`Interaction`, not attached to the session.

    Built as the ORM builds a row it loads, without ``__init__``'s attribute events, which
    cost more per item than the rest of storing it.
    """
    interaction: Interaction = _INTERACTIONS.new_instance()
    interaction.__dict__.update(values)
    return interaction


async def _set_all_matches(
    session: AsyncSession, tenant_id: uuid.UUID, stored: Sequence[Stored]
) -> None:
    await _insert_matches(
        session,
        [
            {"interaction_id": s.interaction.id, "tracker_id": t, "tenant_id": tenant_id}
            for s in stored
            for t in s.tracker_ids
        ],
    )


async def _announcements(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    new: Sequence[tuple[NormalizedItem, Stored]],
    *,
    now: datetime,
) -> list[tuple[Event, str | None]]:
    """The events of the new items, in order: an author's first sighting, then each item."""
    sighted = await _first_sightings(
        session, tenant_id, [(i.channel, i.author) for i, _ in new if i.author is not None], now
    )
    events: list[tuple[Event, str | None]] = []
    for item, stored in new:
        author = item.author
        interaction = stored.interaction
        key = (item.channel, author.platform_user_id) if author else None
        if author is not None and key in sighted:
            sighted.discard(key)  # announced with the first of the author's items
            events.append(
                (
                    AuthorSeen(
                        channel=item.channel,
                        platform_user_id=author.platform_user_id,
                        handle=author.handle,
                        display_name=author.display_name,
                        followers=author.followers,
                        verified=author.verified,
                        seen_at=now,
                    ),
                    f"{item.channel}:{author.platform_user_id}",
                )
            )
        customer_id = interaction.customer_id
        events.append(
            (
                InteractionRecorded(
                    interaction_id=interaction.id,
                    customer_id=customer_id,
                    channel=item.channel,
                    kind=item.kind,
                    platform_id=item.platform_id,
                    thread_id=item.thread_id,
                    platform_user_id=author.platform_user_id if author else None,
                    handle=author.handle if author else None,
                    sentiment=interaction.sentiment_score,
                    sentiment_label=interaction.sentiment_label,
                    language=interaction.language,
                    occurred_at=item.created_at,
                    tracker_ids=list(stored.tracker_ids),
                    brand_mentioned=bool(stored.tracker_ids),
                    rating=item.rating,
                ),
                str(customer_id) if customer_id else str(interaction.id),
            )
        )
    return events


async def _answer_reuse_requests(
    session: AsyncSession, tenant_id: uuid.UUID, interactions: Sequence[Interaction]
) -> None:
    """A new ``#yes``/``#no`` reply of an author answers their open reuse request in its
    thread (``community.reuse.service.answer_from_reply``), in the storing transaction: no event
    round trip through engagement's own queue for every interaction to find the few that do.
    A request answered meanwhile by another transaction leaves the batch alone."""
    for interaction in interactions:
        if (
            interaction.author_platform_user_id is None
            or (interaction.parent_id is None and interaction.thread_id is None)
            or reuse.reply_answer(interaction.text) is None
        ):
            continue
        try:
            async with session.begin_nested():
                await reuse.answer_from_reply(
                    session=session, tenant_id=tenant_id, interaction_id=interaction.id
                )
        except (Conflict, NotFound):
            continue


async def _known(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    pending: Sequence[tuple[int, NormalizedItem, Analysis]],
    results: dict[int, Stored],
) -> None:
    """Items stored before, or repeated within the batch: edits or duplicates, in order.

    An item replaces the stored version only when it is newer by the platform's own edit
    time (``edited_at`` later than the stored edit or, never edited, creation time) and says
    something else; identical data, or an older copy, is a duplicate and changes nothing. The
    stored rows are read (and locked) in one statement and the edits written in one, whatever
    the number of items.
    """
    if not pending:
        return
    current: dict[tuple[str, str], Interaction] = {
        (s.interaction.channel, s.interaction.platform_id): s.interaction for s in results.values()
    }
    wanted = sorted({(item.channel, item.platform_id) for _, item, _ in pending} - set(current))
    if wanted:
        rows = await session.execute(
            text(
                f"SELECT i.* FROM {session.info['schema']}.interactions AS i "
                "JOIN unnest(CAST(:channels AS text[]), CAST(:ids AS text[])) "
                "AS k(channel, platform_id) USING (channel, platform_id) "
                "WHERE i.tenant_id = CAST(:tenant AS uuid) ORDER BY i.id FOR UPDATE OF i"
            ),
            {
                "tenant": tenant_id,
                "channels": [c for c, _ in wanted],
                "ids": [p for _, p in wanted],
            },
        )
        for row in rows:
            current[(row.channel, row.platform_id)] = _interaction(dict(row._mapping))
    edits: dict[uuid.UUID, tuple[NormalizedItem, Analysis, Interaction]] = {}
    for index, item, analysis in pending:
        key = (item.channel, item.platform_id)
        stored = current[key]
        if not _newer(item, stored) or item.text == stored.text:
            results[index] = Stored("duplicate", stored)
            continue
        understanding = analysis.understanding
        state = {k: v for k, v in stored.__dict__.items() if k in _COLUMNS}
        edited = _interaction(
            {
                **state,
                "text": item.text,
                "edited_at": item.edited_at,
                "language": understanding.language,
                "sentiment_score": understanding.sentiment_score,
                "sentiment_label": understanding.sentiment_label,
                "raw": item.raw or {},
            }
        )
        current[key] = edited
        edits[edited.id] = (item, analysis, edited)
        results[index] = Stored("updated", edited, analysis.tracker_ids)
    if edits:
        await _write_edits(session, tenant_id, list(edits.values()))


def _newer(item: NormalizedItem, stored: Interaction) -> bool:
    """Whether ``item`` is a later version than ``stored`` by the platform's edit time."""
    if item.edited_at is None:
        return False
    return item.edited_at > (stored.edited_at or stored.created_at)


async def _write_edits(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    edits: Sequence[tuple[NormalizedItem, Analysis, Interaction]],
) -> None:
    """Store the edited items' last versions: text, edit time, understanding, trackers and
    mentions (one statement each for the whole batch)."""
    schema = session.info["schema"]
    rows = [interaction for _, _, interaction in edits]
    ids = [row.id for row in rows]
    await session.execute(
        text(
            f"UPDATE {schema}.interactions AS i SET text = u.text, edited_at = u.edited_at, "
            "language = u.language, sentiment_score = u.sentiment_score, "
            "sentiment_label = u.sentiment_label, raw = CAST(u.raw AS jsonb) "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:texts AS text[]), "
            "CAST(:edited AS timestamptz[]), CAST(:languages AS text[]), "
            "CAST(:scores AS float8[]), CAST(:labels AS text[]), CAST(:raws AS text[])) "
            "AS u(id, text, edited_at, language, sentiment_score, sentiment_label, raw) "
            "WHERE i.id = u.id"
        ),
        {
            "ids": ids,
            "texts": [row.text for row in rows],
            "edited": [row.edited_at for row in rows],
            "languages": [row.language for row in rows],
            "scores": [row.sentiment_score for row in rows],
            "labels": [row.sentiment_label for row in rows],
            "raws": [orjson.dumps(row.raw).decode() for row in rows],
        },
    )
    await session.execute(
        text(
            f"DELETE FROM {schema}.interaction_trackers "
            "WHERE interaction_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": ids},
    )
    await _insert_matches(
        session,
        [
            {"interaction_id": row.id, "tracker_id": t, "tenant_id": tenant_id}
            for _, analysis, row in edits
            for t in analysis.tracker_ids
        ],
    )
    # A new text may mention others: its mentions are written again (replies and shares
    # are what the item is, not what it says, and stay).
    await session.execute(
        text(
            f"DELETE FROM {schema}.interaction_edges "
            "WHERE interaction_id = ANY(CAST(:ids AS uuid[])) AND kind = 'mention'"
        ),
        {"ids": ids},
    )
    await _write_edges(session, tenant_id, [(item, row) for item, _, row in edits], mentions=True)


# ``@handle`` in a text: a mention of the author with that handle on the item's channel.
MENTION = re.compile(r"@(\w+)")
SHARED = ("quoted", "retweeted")


def edges_of(item: NormalizedItem) -> list[tuple[str, str]]:
    """The ``(kind, target)`` edges an item makes: a reply to its parent item, a mention of
    each ``@handle`` (lower-cased) its text names, a share of each X post it quotes or
    reposts."""
    found: dict[tuple[str, str], None] = {}
    if item.parent_id is not None:
        found[("reply", item.parent_id)] = None
    for handle in MENTION.findall(item.text or "") if "@" in (item.text or "") else ():
        found[("mention", handle.lower()[:200])] = None
    if item.channel == "x" and item.raw:
        post = item.raw.get("post")
        references = post.get("referenced_tweets") if isinstance(post, dict) else None
        for ref in references if isinstance(references, list) else ():
            if isinstance(ref, dict) and ref.get("type") in SHARED and ref.get("id"):
                found[("share", str(ref["id"])[:200])] = None
    return list(found)


async def _write_edges(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    stored: Sequence[tuple[NormalizedItem, Interaction]],
    *,
    mentions: bool = False,
) -> None:
    """Write the interactions' graph edges (``mentions``: only those), and resolve the edges
    stored earlier that waited for one of these interactions as their target.

    A reply or a share is resolved to its target item and that item's author here, in
    either order of arrival: an edge whose target is not stored yet waits (indexed) until it
    is. Mentions are resolved against the authors' handles when the graph is read.
    """
    schema = session.info["schema"]
    ids: list[uuid.UUID] = []
    kinds: list[str] = []
    targets: list[str] = []
    for item, interaction in stored:
        if interaction.author_platform_user_id is None:
            continue  # no source: nothing to draw
        for kind, target in edges_of(item):
            if mentions and kind != "mention":
                continue
            ids.append(interaction.id)
            kinds.append(kind)
            targets.append(target)
    if ids:
        await session.execute(
            _insert_edges_statement(schema),
            {"tenant": tenant_id, "ids": ids, "kinds": kinds, "targets": targets},
        )
    if mentions or not stored:
        return
    await session.execute(
        _resolve_edges_statement(schema),
        {"tenant": tenant_id, "ids": [interaction.id for _, interaction in stored]},
    )


@functools.cache
def _insert_edges_statement(schema: str) -> TextClause:
    return text(
        f"INSERT INTO {schema}.interaction_edges (interaction_id, kind, target, tenant_id, "
        "channel, source_author, target_interaction_id, target_author) "
        "SELECT e.interaction_id, e.kind, e.target, s.tenant_id, s.channel, "
        "s.author_platform_user_id, t.id, t.author_platform_user_id "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]), CAST(:targets AS text[])) "
        "AS e(interaction_id, kind, target) "
        f"JOIN {schema}.interactions AS s ON s.id = e.interaction_id "
        f"LEFT JOIN {schema}.interactions AS t ON e.kind <> 'mention' "
        "AND t.tenant_id = CAST(:tenant AS uuid) AND t.channel = s.channel "
        "AND t.platform_id = e.target "
        "ON CONFLICT DO NOTHING"
    )


@functools.cache
def _resolve_edges_statement(schema: str) -> TextClause:
    return text(
        f"UPDATE {schema}.interaction_edges AS e SET target_interaction_id = t.id, "
        "target_author = t.author_platform_user_id "
        f"FROM {schema}.interactions AS t "
        "WHERE t.id = ANY(CAST(:ids AS uuid[])) AND e.tenant_id = CAST(:tenant AS uuid) "
        "AND e.channel = t.channel AND e.target = t.platform_id "
        "AND e.target_interaction_id IS NULL AND e.kind <> 'mention'"
    )


async def _insert_matches(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {session.info['schema']}.interaction_trackers "
                "(interaction_id, tracker_id, tenant_id) SELECT * FROM unnest("
                "CAST(:interactions AS uuid[]), CAST(:trackers AS uuid[]), "
                "CAST(:tenants AS uuid[]))"
            ),
            {
                "interactions": [r["interaction_id"] for r in rows],
                "trackers": [r["tracker_id"] for r in rows],
                "tenants": [r["tenant_id"] for r in rows],
            },
        )


async def _first_sightings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    authors: Sequence[tuple[str, AuthorRef]],
    now: datetime,
) -> set[tuple[str, str]]:
    """Record the authors as seen (one statement); the ``(channel, platform user id)`` of
    those seen for the first time in the tenant.

    An author who comes several times in the batch is upserted once, with the last known
    value of each field (as one upsert per item, in order, would have left it).
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for channel, author in authors:
        known = merged.setdefault(
            (channel, author.platform_user_id),
            {"handle": None, "display_name": None, "followers": None},
        )
        for field in known:
            if (value := getattr(author, field)) is not None:
                known[field] = value
    if not merged:
        return set()
    keys = list(merged)
    schema = session.info["schema"]
    result = await session.execute(
        text(
            f"INSERT INTO {schema}.authors AS a (tenant_id, channel, platform_user_id, handle, "
            "display_name, followers, first_seen_at, last_seen_at) "
            "SELECT CAST(:tenant AS uuid), channel, platform_user_id, handle, display_name, "
            "followers, CAST(:now AS timestamptz), CAST(:now AS timestamptz) "
            "FROM unnest(CAST(:channels AS text[]), CAST(:users AS text[]), "
            "CAST(:handles AS text[]), CAST(:names AS text[]), CAST(:followers AS bigint[])) "
            "AS t(channel, platform_user_id, handle, display_name, followers) "
            "ON CONFLICT (tenant_id, channel, platform_user_id) DO UPDATE SET "
            "handle = COALESCE(EXCLUDED.handle, a.handle), "
            "display_name = COALESCE(EXCLUDED.display_name, a.display_name), "
            "followers = COALESCE(EXCLUDED.followers, a.followers), "
            "last_seen_at = EXCLUDED.last_seen_at "
            "RETURNING a.channel, a.platform_user_id, (xmax = 0) AS inserted"
        ),
        {
            "tenant": tenant_id,
            "now": now,
            "channels": [c for c, _ in keys],
            "users": [u for _, u in keys],
            "handles": [merged[k]["handle"] for k in keys],
            "names": [merged[k]["display_name"] for k in keys],
            "followers": [merged[k]["followers"] for k in keys],
        },
    )
    return {(r.channel, r.platform_user_id) for r in result if r.inserted}
