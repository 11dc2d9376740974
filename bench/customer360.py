"""Where a customer-360 goes: CPU per request per process and SQL statements per request per
subgraph, for one customer and for a page of 20, through our gateway only (no peer, no floor:
``bench.gateway`` compares). With ``--profile DIR``, a py-spy profile of each subgraph and the
gateway during the second run of each shape (py-spy must be installed in the venv).

    .venv/bin/python -m bench.customer360 [--seconds 5] [--concurrency 10] [--customers 60]

Statements are counted with ``pg_stat_statements`` (the private server preloads it), grouped
by the role each service connects as; BEGIN and ROLLBACK count as statements.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bench.gateway import _load as load
from bench.gateway import customer_fields, one_query, page_query, seed
from bench.harness import (
    BenchStack,
    CpuMeter,
    _make_tenant,
    bench_config,
    exit_cleanly_on_sigterm,
    graphql,
    provision,
    record,
)
from crm_shared import devstack
from tests.support.auth import staff_token
from tests.support.private_postgres import PrivatePostgres


@contextmanager
def stack_with_statements() -> Iterator[tuple[BenchStack, str]]:
    """``bench_stack`` on a private server that preloads pg_stat_statements; and its admin DSN
    to the stack's database."""
    exit_cleanly_on_sigterm()
    pg = PrivatePostgres(durable=True)
    with (pg.data / "postgresql.conf").open("a") as conf:
        conf.write(
            "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
        )
    with pg:
        stack = bench_config(
            pg.host, {"GATEWAY_RATE_LIMIT_ENABLED": "false", "GATEWAY_MAX_COST": "1000000"}
        )
        provision(stack, pg.admin_dsn)
        dsn = pg.admin_dsn.rsplit("/", 1)[0] + "/" + stack.database
        asyncio.run(_execute(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        services = (*devstack.SUBGRAPHS, "gateway")
        processes = devstack.start(stack, services)
        try:
            devstack.wait_ready(stack, tuple(processes), timeout=900)
            tenant_id = _make_tenant(stack)
            token = asyncio.run(staff_token(stack, tenant_id))
            yield BenchStack(stack, processes, tenant_id, token), dsn
        finally:
            devstack.stop(processes)


async def _execute(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


STATEMENTS = """
SELECT r.rolname AS role, sum(s.calls)::bigint AS calls,
       sum(s.calls) FILTER (WHERE s.query ~* '^\\s*(select|with|insert|update|delete)')::bigint
           AS data
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
GROUP BY r.rolname
"""


def statements(dsn: str) -> dict[str, dict[str, int]]:
    """Statements run so far per role: all of them, and those that read or write data."""
    rows = asyncio.run(_execute(dsn, STATEMENTS))
    return {
        r["role"].removesuffix("_svc"): {"all": int(r["calls"]), "data": int(r["data"] or 0)}
        for r in rows
    }


def top_statements(dsn: str, role: str, limit: int = 12) -> list[tuple[int, str]]:
    rows = asyncio.run(
        _execute(
            dsn,
            "SELECT s.calls, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) AS q "
            "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            f"WHERE r.rolname = '{role}_svc' ORDER BY s.calls DESC LIMIT {limit}",
        )
    )
    return [(int(r["calls"]), r["q"]) for r in rows]


def _spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(seconds)),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
            "--subprocesses",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--extra", action="append", default=[])
    args = parser.parse_args()

    with stack_with_statements() as (stack, dsn):
        ids = seed(stack, args.customers)
        edges = graphql(
            stack, "query { customers(first: 100) { edges { cursor } } }", {}, "identity"
        )["customers"]["edges"]
        cursors = [e["cursor"] for e in edges[: max(1, args.customers - args.page_size)]]
        fields = customer_fields(args.extra, own_only=False)
        url = stack.stack.url("gateway", "/graphql")
        pids = {name: p.pid for name, p in stack.processes.items()}
        figures: dict[str, Any] = {}
        for kind in ("one", "page"):
            if kind == "one":
                payloads = [{"query": one_query(fields), "variables": {"id": i}} for i in ids]
            else:
                payloads = [
                    {"query": page_query(fields, args.page_size), "variables": {"after": c}}
                    for c in cursors
                ]
            warm = argparse.Namespace(**{**vars(args), "seconds": 2.0})
            load(url, payloads, warm, stack.token)
            runs = []
            for run in range(args.runs):
                spies = []
                if args.profile is not None and run == 1:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    spies = [
                        _spy(pid, args.profile / f"{kind}-{name}.txt", args.seconds)
                        for name, pid in pids.items()
                    ]
                asyncio.run(_execute(dsn, "SELECT pg_stat_statements_reset()"))
                with CpuMeter(pids) as meter:
                    measured = load(url, payloads, args, stack.token)
                counted = statements(dsn)
                for spy in spies:
                    spy.wait()
                n = measured["requests"]
                runs.append(
                    {
                        "rps": measured["rps"],
                        "p50_ms": measured["p50_ms"],
                        "p99_ms": measured["p99_ms"],
                        "errors": measured["errors"],
                        "first_error": measured["first_error"],
                        "cpu_ms_per_request": meter.ms_per(n),
                        "statements_per_request": {
                            role: {k: round(v / n, 2) for k, v in c.items()}
                            for role, c in counted.items()
                            if role in devstack.SUBGRAPHS
                        },
                    }
                )
                print(kind, runs[-1], flush=True)
            figures[kind] = runs
            for role in devstack.SUBGRAPHS:
                for calls, query in top_statements(dsn, role):
                    print(f"  {kind} {role} {calls:6d} {query}")
    record("customer360", figures)


if __name__ == "__main__":
    main()
