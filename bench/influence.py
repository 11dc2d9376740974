"""Influence recomputation benchmark: PageRank and scoring over a tenant-sized graph.

Builds a synthetic graph of 100,000 profiles and 1,000,000 weighted edges (targets drawn
from a Zipf law, so a few authors get most replies and mentions, as on real networks) and
20,000 customers with one or two profiles each, then times ``engagement.influence.service
.compute`` (the sparse power iteration and the score of every customer: the CPU part of a
recomputation; reading the graph from PostgreSQL is not included). Peak memory is
tracemalloc's peak (numpy's buffers included; measured in runs of their own, since tracing
slows allocation) and the process's max RSS.

References measured in the same run: the floor of any power iteration on this matrix (as many
scipy CSR mat-vecs as PageRank needed, on a prebuilt matrix) and, unless ``--no-networkx``,
``networkx.pagerank`` on the same graph (its graph construction timed apart).

    .venv/bin/python bench/influence.py [--profiles 100000] [--edges 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-networkx", action="store_true")
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
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "influence.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
