"""Drill: PostgreSQL stopped under load and started again: the services say they are not ready
while it is down, recover by themselves, and lose nothing they acknowledged.

What it does: identity and rewards run (as processes, as in production) against a PostgreSQL
cluster of the test's own; a client registers customers through identity's GraphQL API as
fast as it can; the cluster is stopped (fast shutdown: connections are cut, in-flight
transactions abort) for a few seconds and started again. What it counts and prints:
registrations acknowledged and refused, whether each service answered ``/readyz`` 503 while
the database was down and 200 again after it came back (and how long that took), customers
acknowledged but never credited by rewards. Expected: lost 0.

In ``make drills`` only: provisioning and migrating a private cluster and starting two
services takes over a minute on a shared machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from crm_shared import devstack
from crm_shared.provision import provision_database, provision_vhost
from tests.conftest import AMQP_BASE, PORT_BASE, TEST_DB, _reset_vhost
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import staff_token
from tests.support.private_postgres import PrivatePostgres

SERVICES = ("identity", "rewards")


@pytest.fixture
def outage_stack() -> Iterator[tuple[devstack.Stack, PrivatePostgres]]:
    """Identity and rewards running against a private PostgreSQL (and a vhost of their own)."""
    with PrivatePostgres() as pg:
        stack = devstack.Stack(
            database="crm",
            vhost=f"{TEST_DB}_outage",
            pg_host=pg.host,
            ports={
                "gateway": PORT_BASE + 20,
                "identity": PORT_BASE + 21,
                "engagement": PORT_BASE + 22,
                "rewards": PORT_BASE + 23,
            },
            extra_env={"LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true"},
        )

        async def provision() -> None:
            await provision_database(pg.admin_dsn, stack.database, passwords={})
            _reset_vhost(stack.vhost)
            await provision_vhost(AMQP_BASE, stack.vhost)

        asyncio.run(provision())
        devstack.migrate(stack)
        processes = devstack.start(stack, SERVICES)
        try:
            devstack.wait_ready(stack, SERVICES, timeout=90)
            yield stack, pg
        finally:
            devstack.stop(processes)
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_vhost", stack.vhost], check=False, capture_output=True
            )


async def _ready(http: httpx.AsyncClient, stack: devstack.Stack, service: str) -> int:
    try:
        return (await http.get(stack.url(service, "/readyz"), timeout=3)).status_code
    except httpx.HTTPError:
        return 0


async def _wait_status(
    http: httpx.AsyncClient, stack: devstack.Stack, status: int, timeout: float
) -> float:
    """Seconds until every service answers ``/readyz`` with ``status``; raises on timeout."""
    started = time.monotonic()
    while True:
        codes = [await _ready(http, stack, s) for s in SERVICES]
        if all(code == status for code in codes):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"readyz still {codes}, expected {status}")
        await asyncio.sleep(0.2)


@pytest.mark.drill
@pytest.mark.timeout(400)
async def test_services_go_unready_while_postgres_is_down_and_recover_losing_nothing(
    outage_stack: tuple[devstack.Stack, PrivatePostgres],
) -> None:
    stack, pg = outage_stack
    tenant_id = make_tenant(stack)
    token = await staff_token(stack, tenant_id)
    acknowledged: list[str] = []
    refused = 0
    producing = True

    async def produce(http: httpx.AsyncClient) -> None:
        nonlocal refused
        while producing:
            variables = {"input": {"name": "Ann", "email": f"{uuid.uuid4().hex}@example.com"}}
            try:
                response = await http.post(
                    stack.url("identity", "/graphql"),
                    json={"query": REGISTER, "variables": variables},
                    headers={"authorization": f"Bearer {token}"},
                    timeout=5,
                )
                body = response.json()
                if body.get("data") and body["data"].get("registerCustomer"):
                    acknowledged.append(body["data"]["registerCustomer"]["id"])
                    continue
            except (httpx.HTTPError, ValueError):
                pass
            refused += 1
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient() as http:
        producers = [asyncio.create_task(produce(http)) for _ in range(4)]
        await asyncio.sleep(2)
        before = len(acknowledged)
        await asyncio.to_thread(pg.stop)
        unready_after = await _wait_status(http, stack, 503, timeout=15)
        await asyncio.sleep(3)
        await asyncio.to_thread(pg.start)
        ready_after = await _wait_status(http, stack, 200, timeout=30)
        await asyncio.sleep(2)
        producing = False
        await asyncio.gather(*producers)

    # Every acknowledged registration reaches rewards' ledger once.
    admin = await asyncpg.connect(pg.admin_dsn.rsplit("/", 1)[0] + "/crm")
    try:
        deadline = time.monotonic() + 30
        while True:
            credited = await admin.fetchval(
                "SELECT count(DISTINCT customer_id) FROM rewards.journal_entries "
                "WHERE customer_id = ANY($1::uuid[])",
                acknowledged,
            )
            if credited == len(acknowledged) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        entries = await admin.fetchval(
            "SELECT count(*) FROM rewards.journal_entries WHERE customer_id = ANY($1::uuid[])",
            acknowledged,
        )
    finally:
        await admin.close()
    lost = len(acknowledged) - credited
    print(
        f"\npostgres drill: acknowledged={len(acknowledged)} (before the stop {before}) "
        f"refused={refused} unready_after={unready_after:.1f}s ready_again_after="
        f"{ready_after:.1f}s credited={credited} entries={entries} lost={lost}"
    )
    assert before > 0 and len(acknowledged) > before, "load ran before and after the outage"
    assert lost == 0
    assert entries == len(acknowledged)
