"""What every benchmark shares: a stack of its own, figures over runs, results as JSON.

Benchmarks run against a PostgreSQL cluster of their own (``tests/support/private_postgres``,
in a temporary directory, removed afterwards): 50 concurrent writers would otherwise take
half the connections of the machine's server, which others' tests need. They use the
machine's RabbitMQ in a vhost of their own (``crm_bench``; ``CRM_BENCH_DB`` moves it), and
ports 18860-18864 (``CRM_BENCH_PORT_BASE``), so they never touch ``make run`` or a test run.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from crm_shared import devstack
from crm_shared.provision import drop_database, provision_database, provision_vhost
from tests.support.auth import staff_token
from tests.support.private_postgres import PrivatePostgres

AMQP_BASE = os.environ.get("CRM_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
BENCH_DB = os.environ.get("CRM_BENCH_DB", "crm_bench")
PORT_BASE = int(os.environ.get("CRM_BENCH_PORT_BASE", "18860"))
RESULTS = devstack.REPO / "bench" / "results"


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, lowest, highest and spread ((high - low) / median, in %) of runs' figures."""
    median = statistics.median(values)
    low, high = min(values), max(values)
    spread = 100 * (high - low) / median if median else 0.0
    return {
        "median": round(median, 3),
        "low": round(low, 3),
        "high": round(high, 3),
        "spread_pct": round(spread, 1),
        "runs": len(values),
    }


def ratio(value: float, reference: float) -> float:
    """``value / reference``, rounded; 0 when there is no reference."""
    return round(value / reference, 3) if reference else 0.0


def _version(*command: str) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) else ""


def machine() -> dict[str, Any]:
    """The machine a run measured: CPUs, memory, versions, load, when."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = int(meminfo[0].split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "memory_gib": round(total_kib / 2**20, 1),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "postgresql": _version("psql", "--version"),
        "rabbitmq": _version("rabbitmqctl", "version"),
        "node": _version("node", "--version"),
    }


def record(name: str, figures: dict[str, Any]) -> Path:
    """Print ``figures`` and write them, with the machine, to ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "machine": machine(), "figures": figures}
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"written to {path.relative_to(devstack.REPO)}")
    return path


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """``command`` pinned to ``cpus`` with taskset (when there is taskset and a choice)."""
    if cpus and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpus, *command]
    return command


_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    """Every process's children, from ``/proc/<pid>/stat`` (ppid is the 4th field)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a service's worker processes count as the service)."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its descendants (0 when gone)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


class CpuMeter:
    """CPU used by a set of processes between ``start()`` and ``stop()``: the figure that
    a noisy machine hardly moves, unlike a rate. ``ms_per(n)`` divides it by operations."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {name: cpu_seconds(pid) - self._start[name] for name, pid in self.pids.items()}
        return self.used

    def __enter__(self) -> CpuMeter:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def ms_per(self, operations: float) -> dict[str, float]:
        """Milliseconds of CPU per operation, per process and summed (``total``)."""
        if not operations:
            return {}
        per = {name: round(1000 * used / operations, 3) for name, used in self.used.items()}
        per["total"] = round(1000 * sum(self.used.values()) / operations, 3)
        return per


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


@dataclass
class BenchStack:
    """The four services running for a benchmark, with a tenant and its admin token."""

    stack: devstack.Stack
    processes: dict[str, subprocess.Popen[bytes]]
    tenant_id: uuid.UUID
    token: str

    def rss(self) -> dict[str, float]:
        """Each service's resident memory now, in MiB (its worker processes added)."""
        return {
            name: round(sum(rss_mib(pid) for pid in process_tree(p.pid)), 1)
            for name, p in self.processes.items()
        }

    def cpu(self, *names: str) -> CpuMeter:
        """A meter of the CPU the named services (all of them by default) use."""
        chosen = names or tuple(self.processes)
        return CpuMeter({name: self.processes[name].pid for name in chosen})


def _make_tenant(stack: devstack.Stack) -> uuid.UUID:
    slug = f"bench-{uuid.uuid4().hex[:10]}"
    out = subprocess.run(
        [sys.executable, "-m", "identity.tenants.cli", "ensure", "--slug", slug, "--name", slug],
        cwd=devstack.REPO,
        env=stack.env("identity"),
        check=True,
        capture_output=True,
        text=True,
    )
    return uuid.UUID(out.stdout.split()[0])


def bench_config(pg_host: str, extra_env: dict[str, str] | None = None) -> devstack.Stack:
    """Where a benchmark's system lives: its own database server, vhost and ports."""
    return devstack.Stack(
        database=BENCH_DB,
        vhost=BENCH_DB,
        pg_host=pg_host,
        ports={
            "gateway": PORT_BASE,
            "identity": PORT_BASE + 1,
            "engagement": PORT_BASE + 2,
            "rewards": PORT_BASE + 3,
        },
        extra_env={"LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true", **(extra_env or {})},
    )


def provision(stack: devstack.Stack, admin_dsn: str) -> None:
    """A fresh database (through ``admin_dsn``) and vhost for ``stack``, migrated."""

    async def fresh() -> None:
        await drop_database(admin_dsn, stack.database)
        await provision_database(admin_dsn, stack.database, passwords={})
        for args in (["delete_vhost", stack.vhost], ["add_vhost", stack.vhost]):
            subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True)
        await provision_vhost(AMQP_BASE, stack.vhost)

    asyncio.run(fresh())
    devstack.migrate(stack)


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, a CI cancel) into SystemExit, so the services and the
    private database a benchmark started are stopped by its ``finally`` blocks."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextmanager
def bench_stack(
    extra_env: dict[str, str] | None = None, replicas: dict[str, int] | None = None
) -> Iterator[BenchStack]:
    """A private PostgreSQL, a fresh vhost, the four services running (``replicas``: more
    than one process of a service, e.g. ``{"rewards": 2}``); all gone on exit."""
    exit_cleanly_on_sigterm()
    with PrivatePostgres(durable=True) as pg:
        stack = bench_config(pg.host, extra_env)
        provision(stack, pg.admin_dsn)
        services = (*devstack.SUBGRAPHS, "gateway")
        processes = devstack.start(stack, services, replicas=replicas)
        try:
            # As the tests: under load average ~20-35 on 2 cores 180 s was not enough.
            devstack.wait_ready(stack, tuple(processes), timeout=420)
            tenant_id = _make_tenant(stack)
            token = asyncio.run(staff_token(stack, tenant_id))
            yield BenchStack(stack, processes, tenant_id, token)
        finally:
            devstack.stop(processes)


def queued_messages(vhost: str) -> int:
    """Messages ready or unacknowledged in every queue of ``vhost`` (``rabbitmqctl``)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "messages"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(int(line) for line in out.stdout.split() if line.strip().isdigit())


async def unpublished_events(stack: devstack.Stack) -> int:
    """Outbox rows not yet published, over every service's schema."""
    total = 0
    for service in devstack.SUBGRAPHS:
        conn = await asyncpg.connect(stack.database_url(service))
        try:
            found: int = await conn.fetchval(
                f"SELECT count(*) FROM {service}.outbox WHERE published_at IS NULL"
            )
            total += found
        finally:
            await conn.close()
    return total


def drained(stack: devstack.Stack) -> bool:
    """Whether every event is published and every queue of the stack's vhost is empty."""
    return asyncio.run(unpublished_events(stack)) == 0 and queued_messages(stack.vhost) == 0


def wait_until(probe: Any, *, timeout: float, interval: float = 0.5) -> bool:
    """Poll the callable ``probe`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval)
    return False


def graphql(stack: BenchStack, query: str, variables: dict[str, Any], service: str) -> Any:
    """``query`` sent straight to ``service`` with the benchmark's admin token; its data."""
    response = httpx.post(
        stack.stack.url(service, "/graphql"),
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {stack.token}"},
        timeout=60,
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{query[:60]}: {body['errors'][:2]}")
    return body["data"]


REGISTER = "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) { id } }"
RECORD_PROFILE = "mutation($i: RecordSocialProfileInput!) { recordSocialProfile(input: $i) { id } }"
LINK = "mutation($i: LinkSocialProfileInput!) { linkSocialProfile(input: $i) { id } }"


def linked_customers(stack: BenchStack, count: int) -> list[tuple[str, str]]:
    """``count`` customers registered through identity, each with an X profile linked by staff
    decision, once engagement has projected every link (it learns them by event):
    ``(customer id, the profile's platform user id)`` of each."""
    run = uuid.uuid4().hex[:6]
    linked: list[tuple[str, str]] = []
    for i in range(count):
        email = f"bench{i}-{run}@example.com"
        registered = graphql(
            stack, REGISTER, {"i": {"name": f"Bench {i}", "email": email}}, "identity"
        )
        customer_id = registered["registerCustomer"]["id"]
        author = f"u{i}-{run}"
        profile = graphql(
            stack,
            RECORD_PROFILE,
            {"i": {"channel": "X", "platformUserId": author, "handle": author}},
            "identity",
        )["recordSocialProfile"]["id"]
        graphql(
            stack,
            LINK,
            {"i": {"profileId": profile, "customerId": customer_id, "evidence": "STAFF_DECISION"}},
            "identity",
        )
        linked.append((customer_id, author))

    async def projected() -> int:
        conn = await asyncpg.connect(stack.stack.database_url("engagement"))
        try:
            found: int = await conn.fetchval(
                "SELECT count(*) FROM engagement.profile_links WHERE tenant_id = $1 "
                "AND platform_user_id = ANY($2::text[])",
                stack.tenant_id,
                [author for _, author in linked],
            )
            return found
        finally:
            await conn.close()

    if not wait_until(lambda: asyncio.run(projected()) == count, timeout=120):
        raise TimeoutError("engagement did not learn every link within 120 s")
    return linked
