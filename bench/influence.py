"""Influence recomputation benchmark: PageRank and scoring over a tenant-sized graph.

Builds a synthetic graph of 100,000 profiles and 1,000,000 weighted edges (targets drawn
from a Zipf law, so a few authors get most replies and mentions, as on real networks) and
20,000 customers with one or two profiles each, then times ``engagement.influence.service
.compute`` (the sparse power iteration and the score of every customer: the CPU part of a
recomputation; reading the graph from PostgreSQL is not included). Peak memory is
tracemalloc's peak (numpy's buffers included; measured in runs of their own, since tracing
slows allocation) and the process's max RSS.

**End to end** (unless ``--no-db``): a tenant of ``--interactions`` stored X interactions by
``--authors`` authors, with their graph edges as the ingestion writes them, generated in a
private PostgreSQL and analysed as after a large load; then the whole recomputation
(``engagement.influence.service.recompute``: the graph read from ``interaction_edges``, the
platform counts, PageRank, scores and runs stored), each run in a fresh process whose peak
RSS is reported. The issue's target: 1,000,000 interactions in < 30 s and < 1 GiB.

References measured in the same run: the floor of any power iteration on this matrix (as many
scipy CSR mat-vecs as PageRank needed, on a prebuilt matrix) and, unless ``--no-networkx``,
``networkx.pagerank`` on the same graph (its graph construction timed apart).

    .venv/bin/python -m bench.influence [--profiles 100000] [--edges 1000000] [--runs 3]
        [--interactions 1000000] [--authors 100000] [--db-runs 2] [--no-db]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from engagement.influence.pagerank import pagerank_steps
from engagement.influence.scoring import Rules
from engagement.influence.service import Graph, compute

RESULTS = Path(__file__).parent / "results"
RULES = Rules(min_score=0.5, advocate_min_sentiment=0.3, detractor_max_sentiment=-0.3)


def synthetic(
    profiles: int, edges: int, customers: int, seed: int = 42
) -> tuple[Graph, dict[uuid.UUID, list[int]], dict[uuid.UUID, float]]:
    """A graph, customers (with their profiles' indexes) and their mean sentiments."""
    rng = np.random.default_rng(seed)
    sources = rng.integers(0, profiles, edges, dtype=np.int64)
    targets = (rng.zipf(1.6, edges) - 1) % profiles
    targets = rng.permutation(profiles)[targets].astype(np.int64)
    loops = sources == targets
    targets[loops] = (targets[loops] + 1) % profiles
    weights = rng.integers(1, 4, edges).astype(np.float64)
    followers = np.floor(rng.pareto(1.2, profiles) * 100)
    replies_in = np.bincount(targets, weights=weights, minlength=profiles).astype(np.float64)
    graph = Graph(
        profiles=[("x", str(i)) for i in range(profiles)],
        followers=followers,
        likes=np.floor(replies_in * rng.uniform(0, 3, profiles)),
        platform_shares=np.floor(replies_in * rng.uniform(0, 0.5, profiles)),
        sources=sources,
        targets=targets,
        weights=weights,
        replies_in=replies_in,
        shares_in=np.floor(replies_in * 0.1),
    )
    owners = rng.choice(profiles, customers * 2, replace=False)
    linked: dict[uuid.UUID, list[int]] = {}
    sentiments: dict[uuid.UUID, float] = {}
    for i in range(customers):
        customer = uuid.UUID(int=i + 1)
        linked[customer] = [int(owners[2 * i])] + ([int(owners[2 * i + 1])] if i % 2 else [])
        sentiments[customer] = float(rng.uniform(-1, 1))
    return graph, linked, sentiments


def measure(run: Any, runs: int, traced: int) -> tuple[list[float], list[float]]:
    """Seconds of ``runs`` calls of ``run()`` (untraced: tracemalloc slows allocation) and the
    tracemalloc peak, in MiB, of ``traced`` more."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    peaks = []
    for _ in range(traced):
        tracemalloc.start()
        run()
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return seconds, peaks


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "spread": round(max(values) - min(values), 4),
    }


# --- End to end from PostgreSQL -------------------------------------------------------------

# A tenant's data as the ingestion leaves it, generated server-side: ``:n`` X interactions by
# ``:p`` authors; every second one a reply to an earlier post (parents drawn so that a few
# posts get most replies), one in four mentions an author by handle (a few authors most), one
# in ten quotes an earlier post; the platform's metrics in ``raw`` as X sends them. Then the
# edges exactly as ``engagement.ingestion.service`` writes them (replies and shares resolved
# to the target item and its author, mentions by handle), and ``:c`` customers linked to
# authors, half of whom allow profiling.
_GENERATE = [
    """INSERT INTO engagement.authors (tenant_id, channel, platform_user_id, handle, followers,
        first_seen_at, last_seen_at)
    SELECT :t, 'x', 'u' || g, 'h' || g, floor(1000 * random() ^ 4), now(), now()
    FROM generate_series(0, :p - 1) g""",
    """INSERT INTO engagement.interactions (id, tenant_id, channel, platform_id, kind, parent_id,
        author_platform_user_id, author_handle, text, language, sentiment_score,
        sentiment_label, by_brand, created_at, received_at, raw)
    SELECT gen_random_uuid(), :t, 'x', 'p' || g,
        CASE WHEN g % 2 = 1 THEN 'reply' ELSE 'post' END,
        CASE WHEN g % 2 = 1 THEN 'p' || (2 * floor((g / 2) * random() ^ 3)::bigint) END,
        'u' || a, 'h' || a,
        CASE WHEN g % 4 = 3 THEN 'so true @h' || floor(:p * random() ^ 3)::bigint
             ELSE 'I love this brand, the support team was great' END,
        'en', 0.6, 'positive', false, now() - make_interval(secs => :n - g), now(),
        jsonb_build_object('post', jsonb_build_object(
            'public_metrics', jsonb_build_object('like_count', g % 7, 'retweet_count', g % 3,
                'quote_count', 0),
            'referenced_tweets', CASE WHEN g % 10 = 4 THEN jsonb_build_array(jsonb_build_object(
                'type', 'quoted', 'id', 'p' || (2 * floor((g / 2) * random() ^ 3)::bigint)))
                ELSE '[]'::jsonb END))
    FROM generate_series(0, :n - 1) g, LATERAL (SELECT (g * 7919) % :p AS a) au""",
    """INSERT INTO engagement.interaction_edges (interaction_id, kind, target, tenant_id,
        channel, source_author, target_interaction_id, target_author)
    SELECT e.id, e.kind, e.target, :t, 'x', e.author, o.id, o.author_platform_user_id
    FROM (
        SELECT id, 'reply' AS kind, parent_id AS target, author_platform_user_id AS author
        FROM engagement.interactions WHERE tenant_id = :t AND parent_id IS NOT NULL
        UNION ALL
        SELECT id, 'mention', substring(text from '@(\\w+)'), author_platform_user_id
        FROM engagement.interactions WHERE tenant_id = :t AND text LIKE '%@%'
        UNION ALL
        SELECT id, 'share', raw -> 'post' -> 'referenced_tweets' -> 0 ->> 'id',
            author_platform_user_id
        FROM engagement.interactions
        WHERE tenant_id = :t AND jsonb_array_length(raw -> 'post' -> 'referenced_tweets') > 0
    ) e
    LEFT JOIN engagement.interactions o ON e.kind <> 'mention' AND o.tenant_id = :t
        AND o.channel = 'x' AND o.platform_id = e.target""",
    """INSERT INTO engagement.profile_links (tenant_id, channel, platform_user_id, customer_id,
        linked_at)
    SELECT :t, 'x', 'u' || (g * 13), gen_random_uuid(), now()
    FROM generate_series(0, least(:c, :p / 13) - 1) g""",
    """INSERT INTO engagement.consents (tenant_id, customer_id, purpose, granted, changed_at)
    SELECT :t, customer_id, 'profiling', true, now() FROM engagement.profile_links
    WHERE tenant_id = :t AND random() < 0.5""",
]

# The recomputation, alone in a process of its own (its peak memory is then its own).
_CHILD = """
import asyncio, json, os, resource, sys, time, uuid
from sqlalchemy import text
from crm_shared.db import Database
from crm_shared.settings import ServiceSettings
from engagement.influence import service

async def main(url, tenant):
    db = Database(ServiceSettings(service_name="engagement", db_schema="engagement",
                                  database_url=url))
    def backend_cpu(pid):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    started = time.perf_counter()
    async with db.session() as session, session.begin():
        backend = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        backend_started = backend_cpu(backend)
        summary = await service.recompute(session=session, tenant_id=uuid.UUID(tenant),
            rules=service.Rules(min_score=0.5, advocate_min_sentiment=0.3,
                                detractor_max_sentiment=-0.3),
            damping=0.85, sentiment_days=3650)
        postgres_cpu = backend_cpu(backend) - backend_started
    seconds = time.perf_counter() - started
    await db.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "profiles": summary.profiles, "edges": summary.edges,
        "scored": summary.scored, "postgres_cpu_seconds": postgres_cpu,
        "process_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def end_to_end(interactions: int, authors: int, customers: int, runs: int) -> dict[str, Any]:
    """Generate a tenant of ``interactions`` in a private PostgreSQL, then time the whole
    recomputation (graph read, PageRank, scores stored) ``runs`` times, each in a fresh
    process; its peak RSS is that process's (the interpreter and libraries included)."""
    import asyncpg

    from bench.harness import BENCH_DB
    from crm_shared import devstack
    from crm_shared.provision import provision_database
    from tests.support.private_postgres import PrivatePostgres

    tenant = uuid.uuid4()
    with PrivatePostgres(durable=True) as pg:
        stack = devstack.Stack(database=f"{BENCH_DB}_influence", vhost=BENCH_DB, pg_host=pg.host)
        asyncio.run(provision_database(pg.admin_dsn, stack.database, passwords={}))
        devstack.migrate(stack)
        url = stack.database_url("engagement")

        async def generate() -> dict[str, float]:
            conn = await asyncpg.connect(url)
            took: dict[str, float] = {}
            try:
                values = {"t": str(tenant), "n": interactions, "p": authors, "c": customers}
                for number, statement in enumerate(_GENERATE):
                    started = time.perf_counter()
                    sql, args = _numbered(statement, values)
                    await conn.execute(sql, *args)
                    if number == 1:  # the edges are derived from the interactions next
                        await conn.execute("ANALYZE engagement.interactions")
                    took[f"statement_{number}"] = round(time.perf_counter() - started, 1)
                # What the ingestion does after a large load (INGEST_ANALYZE_AFTER_ROWS).
                await conn.execute(
                    "ANALYZE engagement.interactions, engagement.interaction_edges,"
                    " engagement.authors, engagement.profile_links"
                )
                took["edges"] = await conn.fetchval(
                    "SELECT count(*) FROM engagement.interaction_edges"
                )
            finally:
                await conn.close()
            return took

        started = time.perf_counter()
        generated = asyncio.run(generate())
        load_seconds = time.perf_counter() - started
        results = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, url, str(tenant)],
                capture_output=True,
                text=True,
                check=True,
                cwd=devstack.REPO,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "interactions": interactions,
        "authors": authors,
        "stored_edges": int(generated.pop("edges")),
        "generate_seconds": round(load_seconds, 1),
        "generate_seconds_by_statement": generated,
        "graph": {k: results[-1][k] for k in ("profiles", "edges", "scored")},
        "recompute_seconds": summary([r["seconds"] for r in results]),
        "recompute_max_rss_mib": summary([r["max_rss_mib"] for r in results]),
        # CPU, which a loaded machine hardly moves: the process (imports included) and the
        # PostgreSQL backend that ran its statements.
        "recompute_process_cpu_seconds": summary(
            [r.get("process_cpu_seconds", 0.0) for r in results]
        ),
        "recompute_postgres_cpu_seconds": summary(
            [r.get("postgres_cpu_seconds", 0.0) for r in results]
        ),
    }


def _numbered(statement: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """``:name`` parameters as asyncpg's ``$n`` (each name once, typed by a cast)."""
    names = [name for name in values if re.search(rf"(?<!:):{name}\b", statement)]
    casts = {"t": "uuid", "n": "bigint", "p": "bigint", "c": "bigint"}
    for number, name in enumerate(names, start=1):
        cast = f"CAST(${number} AS {casts[name]})"
        statement = re.sub(rf"(?<!:):{name}\b", cast, statement)
    return statement, [values[name] for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-networkx", action="store_true")
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--authors", type=int, default=100_000)
    parser.add_argument("--db-runs", type=int, default=2)
    parser.add_argument("--no-db", action="store_true", help="skip the end-to-end part")
    args = parser.parse_args()

    graph, linked, sentiments = synthetic(args.profiles, args.edges, args.customers)
    n = args.profiles
    compute(graph, linked, sentiments, RULES, damping=0.85)  # warm-up

    ours, ours_peaks = measure(
        lambda: compute(graph, linked, sentiments, RULES, damping=0.85), args.runs, args.runs
    )
    _, steps = pagerank_steps(n, graph.sources, graph.targets, graph.weights)
    out = np.bincount(graph.sources, weights=graph.weights, minlength=n)
    matrix = sparse.csr_matrix(
        (graph.weights / out[graph.sources], (graph.targets, graph.sources)), shape=(n, n)
    )
    x = np.full(n, 1.0 / n)

    def floor() -> None:
        for _ in range(steps):
            matrix @ x

    floors, _ = measure(floor, args.runs, 0)
    result: dict[str, Any] = {
        "benchmark": "influence",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # A shared machine: the load says how much the figures are worth.
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "graph": {
            "profiles": n,
            "edges": len(graph.sources),
            "customers": len(linked),
            "power_iterations": steps,
        },
        "compute_seconds": summary(ours),
        "compute_peak_mib": summary(ours_peaks),
        "matvec_floor_seconds": summary(floors),
    }
    if not args.no_networkx:
        import networkx as nx

        started = time.perf_counter()
        nx_graph = nx.DiGraph()
        nx_graph.add_nodes_from(range(n))
        nx_graph.add_weighted_edges_from(
            zip(graph.sources.tolist(), graph.targets.tolist(), graph.weights.tolist(), strict=True)
        )
        build = time.perf_counter() - started
        networkx, networkx_peaks = measure(
            lambda: nx.pagerank(nx_graph, alpha=0.85, tol=1e-10), args.runs, 1
        )
        # The DiGraph keeps one edge per pair (the last weight), so its answer differs a little.
        result["networkx"] = {
            "version": nx.__version__,
            "graph_build_seconds": round(build, 4),
            "pagerank_seconds": summary(networkx),
            "pagerank_peak_mib": summary(networkx_peaks),
        }
    result["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if not args.no_db:
        result["end_to_end"] = end_to_end(
            args.interactions, args.authors, args.customers, args.db_runs
        )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "influence.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
