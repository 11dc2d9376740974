"""Running the whole system on one machine: for ``make run``, the end-to-end tests and the
benchmarks.

Knows the services by name, port and import path only (never imports their packages).

A service can run as several processes side by side (``start(stack, replicas={"rewards":
2})``): the first listens on the service's port (the one the gateway calls); each further one,
named ``<service>-<n>`` (``rewards-2``), on a free port of its own, added to ``stack.ports``.
Every process runs the whole app: it consumes the service's quorum queues as a competing
consumer, runs a relay (one publishes at a time) and the periodic jobs (each safe on several
replicas).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
SUBGRAPHS = ("identity", "engagement", "rewards")


@dataclass(frozen=True)
class Stack:
    """Where a running system lives: its database, vhost and ports."""

    database: str = "crm"
    vhost: str = "crm"
    ports: dict[str, int] = field(
        default_factory=lambda: {
            "gateway": 8000,
            "identity": 8001,
            "engagement": 8002,
            "rewards": 8003,
        }
    )
    pg_host: str = "127.0.0.1:5432"
    amqp_host: str = "guest:guest@127.0.0.1:5672"
    extra_env: dict[str, str] = field(default_factory=dict)

    def url(self, service: str, path: str = "") -> str:
        """The base URL of ``service`` (plus ``path``)."""
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def database_url(self, service: str) -> str:
        """The URL ``service`` connects with, as its own role."""
        return f"postgresql://{service}_svc@{self.pg_host}/{self.database}"

    def env(self, service: str) -> dict[str, str]:
        """The environment of one service's process (of any of its replicas)."""
        service = service_of(service)
        prefix = service.upper()
        env = {**os.environ, **self.extra_env, "OTEL_SERVICE_NAME": service}
        env[f"{prefix}_AMQP_URL"] = f"amqp://{self.amqp_host}/{self.vhost}"
        env[f"{prefix}_JWKS_URL"] = self.url("identity", "/.well-known/jwks.json")
        # Webhooks of a local stack go to receivers on this machine: allowed explicitly here,
        # refused by default (crm_shared.outbound).
        env.setdefault(f"{prefix}_OUTBOUND_ALLOWED_NETWORKS", '["127.0.0.1/32", "::1/128"]')
        if service == "gateway":
            env["GATEWAY_SUBGRAPH_URLS"] = json.dumps(
                {name: self.url(name, "/graphql") for name in SUBGRAPHS}
            )
        else:
            env[f"{prefix}_DATABASE_URL"] = self.database_url(service)
        return env


def migrate(stack: Stack) -> None:
    """Apply every service's migrations, each as its own role, to the stack's database."""
    for service in SUBGRAPHS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "alembic",
                "-c",
                f"services/{service}/alembic.ini",
                "upgrade",
                "heads",
            ],
            cwd=REPO,
            env=stack.env(service),
            check=True,
        )


def service_of(name: str) -> str:
    """The service a process name belongs to: ``rewards-2`` is a replica of ``rewards``."""
    return name.partition("-")[0]


def replica_names(service: str, count: int) -> list[str]:
    """The process names of ``count`` processes of ``service``: itself, then ``<service>-<n>``."""
    return [service, *(f"{service}-{n}" for n in range(2, count + 1))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def start(
    stack: Stack,
    services: tuple[str, ...] = (*SUBGRAPHS, "gateway"),
    *,
    replicas: Mapping[str, int] | None = None,
) -> dict[str, subprocess.Popen[bytes]]:
    """Start each service under uvicorn; returns the processes by name.

    ``replicas`` runs more than one process of a service (``{"rewards": 2}``: ``rewards``
    and ``rewards-2``); the gateway must stay one process (it is the one entry point).
    ``wait_ready(stack, tuple(processes))`` waits for every one of them."""
    processes = {}
    for service in services:
        count = (replicas or {}).get(service, 1)
        if count < 1 or (service == "gateway" and count != 1):
            raise ValueError(f"replicas of {service}: {count}")
        for name in replica_names(service, count):
            if name not in stack.ports:
                stack.ports[name] = _free_port()
            processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    f"{service}.main:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(stack.ports[name]),
                    "--no-access-log",
                    "--timeout-graceful-shutdown",
                    "5",
                ],
                cwd=REPO,
                env=stack.env(service),
            )
    return processes


def wait_ready(stack: Stack, services: tuple[str, ...], *, timeout: float = 60) -> None:
    """Block until every service answers ``/readyz`` with 200."""
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        service = pending[0]
        try:
            if httpx.get(stack.url(service, "/readyz"), timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service} not ready after {timeout}s")
        time.sleep(0.2)


def stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop the services gracefully (SIGTERM, then SIGKILL after 10s)."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def graphql(
    stack: Stack,
    query: str,
    variables: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    service: str = "gateway",
) -> dict[str, Any]:
    """Send one GraphQL operation to ``service`` (as the bearer of ``token``); the JSON response."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            stack.url(service, "/graphql"),
            json={"query": query, "variables": dict(variables or {})},
            headers=headers,
        )
    result: dict[str, Any] = response.json()
    return result
