"""Gateway benchmark: a customer-360 query through our gateway, against the floor (the same
query's own part sent straight to the one subgraph that owns it) and the peer
(``@apollo/gateway`` over the same subgraphs), for one customer and for a page of
``--page-size`` customers (20).

Load comes from ``bench/loadgen.py`` in a process of its own (pinned with taskset to the last
CPU when there are several), with variables that change from request to request. Each
target and shape: a warm-up, then ``--runs`` runs of ``--seconds``; printed and written to
``bench/results/gateway.json``: req/s, p50, p99 (median and spread over the runs), the ratio
to the floor and to the peer, subgraph requests per query, CPU milliseconds per request summed
over the processes that serve each target (ours: the gateway and the three subgraphs; the
peer: Apollo's gateway and the same subgraphs; the floor: identity), and each service's
resident memory at rest and under load.

    .venv/bin/python -m bench.gateway [--runs 3] [--seconds 5] [--concurrency 20]
        [--customers 200] [--page-size 20]
        [--extra 'referrals(first: 5) { edges { node { id } } }' ...]

The customer-360 selection is the profile and social profiles (identity), the last 20
interactions, segment and influence (engagement), balance, tier and available coupons
(rewards). ``--extra`` adds further selections to the customer, so the query can grow with
the supergraph.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    BenchStack,
    CpuMeter,
    bench_stack,
    graphql,
    linked_customers,
    pinned,
    ratio,
    record,
    rss_mib,
    summary,
)
from crm_shared import devstack
from tests.gateway.harness import ApolloGateway, free_port

PROFILE = """
  id name givenName familyName email country locale lifecycleStatus createdAt
  socialProfiles { channel platformUserId handle followers verified }
"""
CROSS = """
  interactions(first: 20) { edges { node { id channel kind text sentimentLabel createdAt } } }
  segment { name since }
  influence { unavailable score influencer advocate detractor computedAt }
  rewards { balance }
  tier { name since }
  coupons(status: AVAILABLE, first: 10) { edges { node { code expiresAt offerId } } }
"""


def customer_fields(extra: list[str], *, own_only: bool) -> str:
    """The customer-360 selection; ``own_only`` keeps identity's own part (the floor)."""
    return PROFILE if own_only else PROFILE + CROSS + "\n".join(extra)


def one_query(fields: str) -> str:
    return f"query Customer360($id: ID!) {{ customer(id: $id) {{ {fields} }} }}"


def page_query(fields: str, size: int) -> str:
    return (
        f"query Customers360($after: String) {{ customers(first: {size}, after: $after) "
        f"{{ edges {{ cursor node {{ {fields} }} }} }} }}"
    )


def seed(stack: BenchStack, customers: int) -> list[str]:
    """Customers, each with a linked X profile and 20 interactions; their ids."""
    linked = linked_customers(stack, customers)
    ids = [customer_id for customer_id, _ in linked]
    # Interactions once engagement has projected the links (it learns them by event).
    now = datetime.now(UTC)
    items = [
        {
            "channel": "x",
            "platform_id": f"bench-{i}-{n}-{uuid.uuid4().hex[:6]}",
            "kind": "post",
            "author": {"platform_user_id": author, "handle": author},
            "text": f"I love this brand, message {n}",
            "created_at": (now - timedelta(minutes=n)).isoformat(),
        }
        for i, (_, author) in enumerate(linked)
        for n in range(20)
    ]
    for start in range(0, len(items), 500):
        response = httpx.post(
            stack.stack.url("engagement", "/ingest/normalized"),
            json=items[start : start + 500],
            headers={"authorization": f"Bearer {stack.token}"},
            timeout=120,
        )
        response.raise_for_status()
    return ids


def _payloads(
    kind: str, fields: str, ids: list[str], cursors: list[str], page_size: int
) -> list[dict[str, Any]]:
    if kind == "one":
        return [{"query": one_query(fields), "variables": {"id": i}} for i in ids]
    return [{"query": page_query(fields, page_size), "variables": {"after": c}} for c in cursors]


def _load(url: str, payloads: list[dict[str, Any]], args: argparse.Namespace, token: str) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(payloads, f)
    cpus = str((os.cpu_count() or 1) - 1)
    command = pinned(
        [
            sys.executable,
            "bench/loadgen.py",
            "--url",
            url,
            "--payloads",
            f.name,
            "--concurrency",
            str(args.concurrency),
            "--seconds",
            str(args.seconds),
            "--token",
            token,
        ],
        cpus,
    )
    out = subprocess.run(
        command, cwd=devstack.REPO, capture_output=True, text=True, check=True, env=_env()
    )
    Path(f.name).unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(devstack.REPO)}


class Sampler:
    """Samples the services' resident memory while load runs; keeps each one's peak."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mib(pid))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _apollo_supergraph(stack: devstack.Stack) -> Path:
    """The committed supergraph with its subgraph URLs pointed at this run's services."""
    sdl = (devstack.REPO / "infra" / "supergraph.graphql").read_text()
    for name in devstack.SUBGRAPHS:
        sdl = re.sub(
            rf'(name: "{name}", url: ")[^"]+(")', rf"\g<1>{stack.url(name, '/graphql')}\2", sdl
        )
    path = Path(tempfile.mkdtemp()) / "supergraph.graphql"
    path.write_text(sdl)
    return path


def _measure(
    kind: str,
    targets: dict[str, tuple[str, bool]],
    ids: list[str],
    cursors: list[str],
    args: argparse.Namespace,
    stack: BenchStack,
    processes: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """One shape against every target; runs interleaved (target by target within each round)
    so that the machine's load drifting over minutes does not favour whoever runs last.
    ``processes`` names the processes whose CPU each target's requests cost."""
    payloads = {
        target: _payloads(
            kind, customer_fields(args.extra, own_only=own_only), ids, cursors, args.page_size
        )
        for target, (_, own_only) in targets.items()
    }
    warm = argparse.Namespace(**{**vars(args), "seconds": 2.0})
    for target, (url, _) in targets.items():
        _load(url, payloads[target], warm, stack.token)
    runs: dict[str, list[Any]] = {target: [] for target in targets}
    cpu: dict[str, list[dict[str, float]]] = {target: [] for target in targets}
    for _ in range(args.runs):
        for target, (url, _) in targets.items():
            with CpuMeter(processes[target]) as meter:
                measured = _load(url, payloads[target], args, stack.token)
            runs[target].append(measured)
            cpu[target].append(meter.ms_per(measured["requests"]))
    shape: dict[str, Any] = {}
    for target, measured in runs.items():
        shape[target] = {
            "rps": summary([r["rps"] for r in measured]),
            "p50_ms": summary([r["p50_ms"] for r in measured]),
            "p99_ms": summary([r["p99_ms"] for r in measured]),
            "errors": sum(r["errors"] for r in measured),
            "first_error": next((r["first_error"] for r in measured if r["first_error"]), None),
            "subgraph_requests_per_query": measured[-1]["subgraph_requests_per_op"],
            # CPU of the processes serving the target, per request, summed over them.
            "cpu_ms_per_request": summary([c.get("total", 0.0) for c in cpu[target]]),
            "cpu_ms_per_request_by_process": cpu[target][-1],
        }
        print(kind, target, shape[target]["rps"], flush=True)
    ours = shape["gateway"]["rps"]["median"]
    shape["ratio_to_floor"] = ratio(ours, shape["floor (identity straight)"]["rps"]["median"])
    shape["ratio_to_peer"] = ratio(ours, shape["peer (@apollo/gateway)"]["rps"]["median"])
    return shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--page-size", type=int, default=20)
    args = parser.parse_args()

    env = {
        "GATEWAY_DEBUG_EXTENSIONS": "true",
        # The peer has neither: the comparison is of execution, not of the edge's policies.
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
        "GATEWAY_MAX_COST": "1000000",
    }
    with bench_stack(extra_env=env) as stack:
        ids = seed(stack, args.customers)
        edges = graphql(
            stack, "query { customers(first: 100) { edges { cursor } } }", {}, "identity"
        )["customers"]["edges"]
        cursors = [e["cursor"] for e in edges[: max(1, args.customers - args.page_size)]]
        rest = {name: rss_mib(p.pid) for name, p in stack.processes.items()}
        apollo = ApolloGateway(_apollo_supergraph(stack.stack), free_port())
        apollo_url = apollo.wait_ready()
        try:
            targets = {
                "gateway": (stack.stack.url("gateway", "/graphql"), False),
                "floor (identity straight)": (stack.stack.url("identity", "/graphql"), True),
                "peer (@apollo/gateway)": (apollo_url, False),
            }
            pids = {name: p.pid for name, p in stack.processes.items()}
            pids["apollo"] = apollo.process.pid
            subgraphs = {name: pids[name] for name in devstack.SUBGRAPHS}
            processes = {
                "gateway": {"gateway": pids["gateway"], **subgraphs},
                "floor (identity straight)": {"identity": pids["identity"]},
                "peer (@apollo/gateway)": {"apollo": pids["apollo"], **subgraphs},
            }
            figures: dict[str, Any] = {"memory_mib_at_rest": rest, "shapes": {}}
            with Sampler(pids) as sampler:
                for kind in ("one", "page"):
                    figures["shapes"][kind] = _measure(
                        kind, targets, ids, cursors, args, stack, processes
                    )
            figures["memory_mib_peak_under_load"] = sampler.peak
            figures["settings"] = {**vars(args), "customers_seeded": len(ids)}
        finally:
            apollo.stop()
    record("gateway", figures)


if __name__ == "__main__":
    main()
