"""Computing customers' influence over a tenant's graph of authors, and announcing who
became (or stopped being) an influencer, advocate or detractor.

The graph's nodes are the tenant's authors (a channel and a platform user); an edge goes from
an author to another they replied to or commented on, mentioned (``@handle`` of a known
author on the same channel), or shared (an X quote or repost of a stored post), weighted by
how often. Per author: reach is their follower count; amplification is how often their items
were shared (the larger of the shares we stored and the platform's own repost and quote
counts); engagement received is the replies and comments others made to their items, plus
the platform's like counts, plus amplification. A customer's parts are the sums over their
linked profiles. Only customers whose ``profiling`` consent is granted are scored and stored;
the others' authors still shape everyone's PageRank (they are part of the conversation) but
nothing about them is kept.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

import numpy as np
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.db import Database, utcnow
from crm_shared.events import record_event
from crm_shared.privacy import consent_allows
from engagement.influence.events import InfluencerIdentified
from engagement.influence.models import InfluenceRun, InfluenceScore
from engagement.influence.pagerank import Indices, Vector, pagerank
from engagement.influence.scoring import Parts, Rules, Standing, scores, standings
from engagement.settings import EngagementSettings

log = logging.getLogger(__name__)

PROFILING = "profiling"
Profile = tuple[str, str]


@dataclass(frozen=True)
class Graph:
    """A tenant's authors (by index) with their own counts, and the edges between them."""

    profiles: list[Profile]
    followers: Vector
    likes: Vector
    platform_shares: Vector
    sources: Indices
    targets: Indices
    weights: Vector
    replies_in: Vector
    shares_in: Vector


@dataclass(frozen=True)
class Scored:
    """A customer's parts and standing."""

    parts: Parts
    standing: Standing
    mean_sentiment: float | None


@dataclass(frozen=True)
class Summary:
    """What one recomputation did."""

    profiles: int
    edges: int
    scored: int
    announced: int
    computed_at: datetime


def compute(
    graph: Graph,
    customers: Mapping[uuid.UUID, Sequence[int]],
    sentiments: Mapping[uuid.UUID, float],
    rules: Rules,
    *,
    damping: float,
) -> dict[uuid.UUID, Scored]:
    """Score ``customers`` (each with the indexes of their profiles) over ``graph``."""
    n = len(graph.profiles)
    ranks = pagerank(n, graph.sources, graph.targets, graph.weights, damping=damping)
    amplification = np.maximum(graph.shares_in, graph.platform_shares)
    engagement = graph.replies_in + graph.likes + amplification
    top = Parts(
        reach=int(graph.followers.max(initial=0)),
        engagement_received=int(engagement.max(initial=0)),
        amplification=int(amplification.max(initial=0)),
        page_rank=float(ranks.max(initial=0.0)),
    )
    ids, groups = list(customers), list(customers.values())
    # Each customer's parts: sums over their profiles, one bincount per part.
    owner = np.repeat(np.arange(len(ids)), [len(g) for g in groups])
    profile = np.fromiter(chain.from_iterable(groups), dtype=np.int64)

    def summed(values: Vector) -> Vector:
        total = np.bincount(owner, weights=values[profile], minlength=len(ids))
        return total.astype(np.float64)

    reach, received = summed(graph.followers), summed(engagement)
    shared, ranked = summed(amplification), summed(ranks)
    known = [sentiments.get(c) for c in ids]
    means = np.array([np.nan if m is None else m for m in known], dtype=np.float64)
    values = scores(reach, received, shared, ranked, top)
    influencer, advocate, detractor = standings(values, means, rules)
    # Plain Python numbers first: indexing numpy arrays one by one is slow.
    columns = zip(
        ids,
        known,
        reach.tolist(),
        received.tolist(),
        shared.tolist(),
        ranked.tolist(),
        values.tolist(),
        influencer.tolist(),
        advocate.tolist(),
        detractor.tolist(),
        strict=True,
    )
    return {
        c: Scored(
            Parts(int(r), int(e), int(a), round(p, 12)),
            Standing(v, i, adv, det),
            m,
        )
        for c, m, r, e, a, p, v, i, adv, det in columns
    }


# The tenant's graph, read from the edges stored with the interactions
# (``engagement.ingestion.service._write_edges``): replies and shares already name their
# target's author; a mention names a handle, matched to the authors' current handles here.
_EDGES = """
SELECT channel, source_author AS source, target_author AS target, kind, count(*) AS n
FROM engagement.interaction_edges
WHERE tenant_id = :t AND kind <> 'mention' AND target_author <> source_author
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT e.channel, e.source_author, a.platform_user_id, 'mention', count(*)
FROM engagement.interaction_edges e
JOIN engagement.authors a ON a.tenant_id = e.tenant_id AND a.channel = e.channel
     AND lower(a.handle) = e.target
WHERE e.tenant_id = :t AND e.kind = 'mention' AND a.platform_user_id <> e.source_author
GROUP BY 1, 2, 3
"""

_REPLY, _SHARE = 1, 2
# The authors and the edges in ONE statement (one snapshot: an author stored meanwhile cannot
# shift the numbering), as arrays: each edge's source and target as the index of the author
# in ``channels``/``users``, its count and kind; no Python object per edge.
_GRAPH = f"""
WITH a AS (
    SELECT channel, platform_user_id, coalesce(followers, 0) AS followers,
           row_number() OVER (ORDER BY channel, platform_user_id) - 1 AS i
    FROM engagement.authors WHERE tenant_id = :t
), e AS ({_EDGES}), g AS (
    SELECT array_agg(s.i) AS sources, array_agg(d.i) AS targets, array_agg(e.n) AS weights,
           array_agg(CASE e.kind WHEN 'reply' THEN {_REPLY} WHEN 'share' THEN {_SHARE} ELSE 0 END)
           AS kinds
    FROM e
    JOIN a s ON s.channel = e.channel AND s.platform_user_id = e.source
    JOIN a d ON d.channel = e.channel AND d.platform_user_id = e.target
)
SELECT (SELECT array_agg(channel ORDER BY i) FROM a) AS channels,
       (SELECT array_agg(platform_user_id ORDER BY i) FROM a) AS users,
       (SELECT array_agg(followers ORDER BY i) FROM a) AS followers, g.*
FROM g
"""

_METRIC = (
    "CASE WHEN jsonb_typeof(raw -> 'post' -> 'public_metrics' -> '{0}') = 'number'"
    " THEN CAST(raw -> 'post' -> 'public_metrics' ->> '{0}' AS bigint) ELSE 0 END"
)

_PLATFORM_COUNTS = (
    "SELECT channel, author_platform_user_id AS author,"
    f" sum({_METRIC.format('like_count')}) AS likes,"
    f" sum({_METRIC.format('retweet_count')} + {_METRIC.format('quote_count')}) AS shares"
    " FROM engagement.interactions WHERE tenant_id = :t AND channel = 'x'"
    " AND author_platform_user_id IS NOT NULL GROUP BY 1, 2"
)


async def load_graph(*, session: AsyncSession, tenant_id: uuid.UUID) -> Graph:
    """The tenant's graph of authors, from its stored edges."""
    found = (await session.execute(text(_GRAPH), {"t": tenant_id})).one()
    profiles: list[Profile] = list(zip(found.channels or [], found.users or [], strict=True))
    index = {p: i for i, p in enumerate(profiles)}
    n = len(profiles)
    followers = np.array(found.followers or [], dtype=np.float64)
    likes, platform_shares = np.zeros(n), np.zeros(n)
    for row in await session.execute(text(_PLATFORM_COUNTS), {"t": tenant_id}):
        at = index.get((row.channel, row.author))
        if at is not None:
            likes[at], platform_shares[at] = float(row.likes), float(row.shares)
    sources = np.array(found.sources or [], dtype=np.int64)
    targets = np.array(found.targets or [], dtype=np.int64)
    weights = np.array(found.weights or [], dtype=np.float64)
    kinds = np.array(found.kinds or [], dtype=np.int8)
    replies_in = np.bincount(targets, weights=weights * (kinds == _REPLY), minlength=n)
    shares_in = np.bincount(targets, weights=weights * (kinds == _SHARE), minlength=n)
    return Graph(
        profiles=profiles,
        followers=followers,
        likes=likes,
        platform_shares=platform_shares,
        sources=sources,
        targets=targets,
        weights=weights,
        replies_in=replies_in.astype(np.float64),
        shares_in=shares_in.astype(np.float64),
    )


async def _lock(session: AsyncSession, tenant_id: uuid.UUID, *, wait: bool) -> bool:
    """The tenant's recomputation lock for this transaction (False: another run holds it)."""
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    result = await session.execute(
        text(f"SELECT {function}(hashtextextended('engagement.influence:' || :t, 0))"),
        {"t": str(tenant_id)},
    )
    return wait or bool(result.scalar_one())


async def recompute(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    rules: Rules,
    damping: float,
    sentiment_days: int,
    wait: bool = True,
    now: datetime | None = None,
) -> Summary | None:
    """Recompute the tenant's influence in the caller's transaction and announce changes of
    standing; None if another run holds the tenant (and ``wait`` is False)."""
    if not await _lock(session, tenant_id, wait=wait):
        return None
    now = now or utcnow()
    graph = await load_graph(session=session, tenant_id=tenant_id)
    index = {p: i for i, p in enumerate(graph.profiles)}
    links = await session.execute(
        text(
            "SELECT channel, platform_user_id, customer_id FROM engagement.profile_links"
            " WHERE tenant_id = :t"
        ),
        {"t": tenant_id},
    )
    customers: dict[uuid.UUID, list[int]] = {}
    for link in links:
        at = index.get((link.channel, link.platform_user_id))
        customers.setdefault(link.customer_id, [])
        if at is not None:
            customers[link.customer_id].append(at)
    allowed = await consent_allows(
        session, "engagement", tenant_id=tenant_id, customer_ids=list(customers), purpose=PROFILING
    )
    customers = {c: indexes for c, indexes in customers.items() if c in allowed}
    sentiments = await _mean_sentiments(
        session, tenant_id, list(customers), now - timedelta(days=sentiment_days)
    )
    scored = await asyncio.to_thread(compute, graph, customers, sentiments, rules, damping=damping)
    stored = await session.execute(
        text("SELECT * FROM engagement.influence_scores WHERE tenant_id = :t FOR UPDATE"),
        {"t": tenant_id},
    )
    previous = {row.customer_id: InfluenceScore.model_validate(row._mapping) for row in stored}
    await _store(session, tenant_id, scored, now)
    announced = 0
    for customer_id, result in scored.items():
        before = previous.get(customer_id)
        was = (before.influencer, before.advocate, before.detractor) if before else (False,) * 3
        new = result.standing
        if was != (new.influencer, new.advocate, new.detractor):
            await _announce(session, tenant_id, customer_id, new.score, new)
            announced += 1
    for customer_id, before in previous.items():
        if customer_id not in scored and (before.influencer or before.advocate or before.detractor):
            await _announce(session, tenant_id, customer_id, None, None)
            announced += 1
    edges = len(graph.sources)
    await session.execute(
        text(
            "INSERT INTO engagement.influence_runs (tenant_id, computed_at, profiles, edges)"
            " VALUES (:t, :now, :profiles, :edges) ON CONFLICT (tenant_id) DO UPDATE SET"
            " computed_at = EXCLUDED.computed_at, profiles = EXCLUDED.profiles,"
            " edges = EXCLUDED.edges"
        ),
        {"t": tenant_id, "now": now, "profiles": len(graph.profiles), "edges": edges},
    )
    return Summary(len(graph.profiles), edges, len(scored), announced, now)


async def _mean_sentiments(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], since: datetime
) -> dict[uuid.UUID, float]:
    if not customer_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT customer_id, avg(sentiment_score) AS mean FROM engagement.interactions"
            " WHERE tenant_id = :t AND customer_id = ANY(:ids) AND sentiment_score IS NOT NULL"
            " AND created_at >= :since GROUP BY customer_id"
        ),
        {"t": tenant_id, "ids": customer_ids, "since": since},
    )
    return {row.customer_id: round(float(row.mean), 4) for row in rows}


async def _store(
    session: AsyncSession, tenant_id: uuid.UUID, scored: dict[uuid.UUID, Scored], now: datetime
) -> None:
    """Replace the tenant's scores with ``scored`` (the unscored are forgotten)."""
    ids = list(scored)
    await session.execute(
        text(
            "DELETE FROM engagement.influence_scores WHERE tenant_id = :t"
            " AND NOT customer_id = ANY(:ids)"
        ),
        {"t": tenant_id, "ids": ids},
    )
    if not ids:
        return
    values = [scored[c] for c in ids]
    await session.execute(
        text(
            "INSERT INTO engagement.influence_scores AS s (tenant_id, customer_id, reach,"
            " engagement_received, amplification, page_rank, score, mean_sentiment, influencer,"
            " advocate, detractor, computed_at)"
            " SELECT CAST(:t AS uuid), *, CAST(:now AS timestamptz) FROM unnest("
            "CAST(:ids AS uuid[]), CAST(:reach AS bigint[]), CAST(:engagement AS bigint[]),"
            " CAST(:amplification AS bigint[]), CAST(:page_rank AS float8[]),"
            " CAST(:score AS float8[]), CAST(:sentiment AS float8[]),"
            " CAST(:influencer AS boolean[]), CAST(:advocate AS boolean[]),"
            " CAST(:detractor AS boolean[]))"
            " ON CONFLICT (tenant_id, customer_id) DO UPDATE SET reach = EXCLUDED.reach,"
            " engagement_received = EXCLUDED.engagement_received,"
            " amplification = EXCLUDED.amplification, page_rank = EXCLUDED.page_rank,"
            " score = EXCLUDED.score, mean_sentiment = EXCLUDED.mean_sentiment,"
            " influencer = EXCLUDED.influencer, advocate = EXCLUDED.advocate,"
            " detractor = EXCLUDED.detractor, computed_at = EXCLUDED.computed_at"
        ),
        {
            "t": tenant_id,
            "now": now,
            "ids": ids,
            "reach": [v.parts.reach for v in values],
            "engagement": [v.parts.engagement_received for v in values],
            "amplification": [v.parts.amplification for v in values],
            "page_rank": [v.parts.page_rank for v in values],
            "score": [v.standing.score for v in values],
            "sentiment": [v.mean_sentiment for v in values],
            "influencer": [v.standing.influencer for v in values],
            "advocate": [v.standing.advocate for v in values],
            "detractor": [v.standing.detractor for v in values],
        },
    )


async def _announce(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    value: float | None,
    new: Standing | None,
) -> None:
    await record_event(
        session,
        InfluencerIdentified(
            customer_id=customer_id,
            score=value,
            influencer=bool(new and new.influencer),
            advocate=bool(new and new.advocate),
            detractor=bool(new and new.detractor),
        ),
        tenant_id=tenant_id,
        subject=str(customer_id),
    )


async def recompute_all(
    db: Database,
    *,
    rules: Rules,
    damping: float,
    sentiment_days: int,
    statement_timeout_seconds: float | None = None,
) -> int:
    """Recompute every tenant with linked profiles or scores, a tenant per transaction (a
    tenant another replica is computing is skipped); how many tenants were computed.

    With ``statement_timeout_seconds`` no statement of a tenant's recomputation runs longer:
    one that would fails that tenant's round (rolled back, logged), not the others'."""
    async with db.session() as session:
        tenants = list(
            (
                await session.execute(
                    text(
                        "SELECT tenant_id FROM engagement.profile_links"
                        " UNION SELECT tenant_id FROM engagement.influence_scores"
                    )
                )
            ).scalars()
        )
    done = 0
    for tenant_id in tenants:
        try:
            async with db.session() as session, session.begin():
                if statement_timeout_seconds is not None:
                    milliseconds = max(1, int(statement_timeout_seconds * 1000))
                    await session.execute(text(f"SET LOCAL statement_timeout = {milliseconds}"))
                summary = await recompute(
                    session=session,
                    tenant_id=tenant_id,
                    rules=rules,
                    damping=damping,
                    sentiment_days=sentiment_days,
                    wait=False,
                )
        except DBAPIError as exc:
            if "statement timeout" not in str(exc):
                raise
            log.error("influence of tenant %s: a statement ran out of time (%s)", tenant_id, exc)
            continue
        done += summary is not None
    return done


async def scores_of(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, InfluenceScore]:
    """The stored influence of those of ``customer_ids`` who allow profiling now (the others,
    and those not computed yet, are absent)."""
    _, scores = await standing_of(session, tenant_id, customer_ids)
    return scores


async def standing_of(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> tuple[set[uuid.UUID], dict[uuid.UUID, InfluenceScore]]:
    """Which of ``customer_ids`` allow profiling now, and the stored influence of those.

    One statement (the graph asks this per page of customers): the consent rule of
    ``crm_shared.privacy.consent_allows`` (never asked: not granted) joined to the scores."""
    rows = await session.execute(
        text(
            "SELECT c.customer_id AS allowed, s.* FROM engagement.consents c"
            " LEFT JOIN engagement.influence_scores s"
            " ON s.tenant_id = c.tenant_id AND s.customer_id = c.customer_id"
            " WHERE c.tenant_id = :t AND c.customer_id = ANY(:ids) AND c.purpose = :p"
            " AND c.granted"
        ),
        {"t": tenant_id, "ids": list(customer_ids), "p": PROFILING},
    )
    allowed: set[uuid.UUID] = set()
    scores: dict[uuid.UUID, InfluenceScore] = {}
    for row in rows:
        allowed.add(row.allowed)
        if row.customer_id is not None:
            fields = dict(row._mapping)
            del fields["allowed"]
            scores[row.allowed] = InfluenceScore.model_validate(fields)
    return allowed, scores


async def last_run(*, session: AsyncSession, tenant_id: uuid.UUID) -> InfluenceRun | None:
    """The tenant's last computation, if any."""
    return await session.get(InfluenceRun, tenant_id)


async def ranked(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    flag: str,
    limit: int,
    after: tuple[float, uuid.UUID] | None,
) -> list[InfluenceScore]:
    """Advocates or detractors (``flag``) who allow profiling now, highest score first."""
    if flag not in ("advocate", "detractor"):
        raise ValueError(flag)
    position = "" if after is None else " AND (s.score, s.customer_id) < (:score, :id)"
    rows = await session.execute(
        text(
            "SELECT s.* FROM engagement.influence_scores s JOIN engagement.consents c"
            " ON c.tenant_id = s.tenant_id AND c.customer_id = s.customer_id"
            " AND c.purpose = 'profiling' AND c.granted"
            f" WHERE s.tenant_id = :t AND s.{flag}{position}"
            " ORDER BY s.score DESC, s.customer_id DESC LIMIT :limit"
        ),
        {
            "t": tenant_id,
            "limit": limit,
            **({} if after is None else {"score": after[0], "id": after[1]}),
        },
    )
    return [InfluenceScore.model_validate(row._mapping) for row in rows]


def rules_of(settings: EngagementSettings) -> Rules:
    """The influencer, advocate and detractor thresholds of ``settings``."""
    return Rules(
        min_score=settings.influence_min_score,
        advocate_min_sentiment=settings.influence_advocate_min_sentiment,
        detractor_max_sentiment=settings.influence_detractor_max_sentiment,
    )


async def recompute_every_tenant(db: Database, settings: EngagementSettings) -> int:
    """The periodic job: every tenant, with ``settings``' thresholds."""
    return await recompute_all(
        db,
        rules=rules_of(settings),
        damping=settings.influence_damping,
        sentiment_days=settings.influence_sentiment_days,
        statement_timeout_seconds=settings.job_statement_timeout_seconds,
    )
