"""The suite's real parts: a test database and vhost of its own, and the running services.

Tests use the database ``crm_test`` and the vhost ``crm_test`` (both made afresh per run) and
ports 18000-18003, so they never touch the data of ``make run`` and can run beside it. Under
pytest-xdist each worker adds its name (``crm_test_gw1``) and moves its ports 50 up per worker.
``CRM_TEST_DB`` (database and vhost name) and ``CRM_TEST_PORT_BASE`` move a run elsewhere, so
that two runs (two developers, two CI jobs) on one machine do not drop each other's database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import aio_pika
import httpx
import pytest

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.provision import drop_database, provision_database, provision_vhost
from crm_shared.settings import ServiceSettings
from tests.support.otlp import OtlpReceiver

ADMIN_DSN = os.environ.get("CRM_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("CRM_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
# Under pytest-xdist (`make test` runs two workers) each worker is a run of its own: its own
# database, vhost and ports (50 apart: a run uses PORT_BASE to PORT_BASE + 33).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_INDEX = int(WORKER.removeprefix("gw")) if WORKER else 0
TEST_DB = os.environ.get("CRM_TEST_DB", "crm_test") + (f"_{WORKER}" if WORKER else "")
TEST_VHOST = TEST_DB
PORT_BASE = int(os.environ.get("CRM_TEST_PORT_BASE", "18000")) + 50 * _WORKER_INDEX


MANAGEMENT_URL = os.environ.get("CRM_TEST_RABBITMQ_MANAGEMENT", "http://127.0.0.1:15672")


def _reset_vhost(vhost: str) -> None:
    """An empty ``vhost`` that guest may use, made afresh through the management API (which
    ``make services`` enables), each call bounded: ``rabbitmqctl`` starts an Erlang VM per call
    and, on a loaded machine with many vhosts, its ``delete_vhost`` once hung a run for good."""
    url = f"{MANAGEMENT_URL}/api/vhosts/{quote(vhost, safe='')}"
    auth = ("guest", "guest")
    try:
        with httpx.Client(auth=auth, timeout=120) as api:
            api.delete(url)
            api.put(url).raise_for_status()
            api.put(
                f"{MANAGEMENT_URL}/api/permissions/{quote(vhost, safe='')}/guest",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
            return
    except httpx.HTTPError:
        pass  # no management API: the command line, as before
    for args in (["delete_vhost", vhost], ["add_vhost", vhost]):
        subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """The trace receiver the services of this run export to."""
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def stack_config(otlp: OtlpReceiver) -> devstack.Stack:
    return devstack.Stack(
        database=TEST_DB,
        vhost=TEST_VHOST,
        ports={
            "gateway": PORT_BASE,
            "identity": PORT_BASE + 1,
            "engagement": PORT_BASE + 2,
            "rewards": PORT_BASE + 3,
        },
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "GATEWAY_DEBUG_EXTENSIONS": "true",
            # Short back-offs so retries are quick in tests.
            "REWARDS_RETRY_DELAYS_MS": "[200, 400]",
            "REWARDS_LEDGER_CHECK_INTERVAL_SECONDS": "5",
            # Webhook retries within seconds, so exhausting them is quick in tests.
            "IDENTITY_WEBHOOK_POLL_SECONDS": "0.2",
            "IDENTITY_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
            "IDENTITY_WEBHOOK_RETRY_MAX_SECONDS": "1",
            "IDENTITY_WEBHOOK_RETRY_WINDOW_SECONDS": "4",
            "IDENTITY_WEBHOOK_TIMEOUT_SECONDS": "3",
            "LOG_LEVEL": "WARNING",
        },
    )


def _provision(stack: devstack.Stack) -> devstack.Stack:
    """A fresh database (schemas, roles, migrations) and a fresh vhost for ``stack``."""

    async def provision() -> None:
        await drop_database(ADMIN_DSN, stack.database)
        await provision_database(ADMIN_DSN, stack.database, passwords={})
        _reset_vhost(stack.vhost)
        await provision_vhost(AMQP_BASE, stack.vhost)

    asyncio.run(provision())
    devstack.migrate(stack)
    return stack


@pytest.fixture(scope="session")
def provisioned(stack_config: devstack.Stack) -> devstack.Stack:
    """The database and vhost the running services of the e2e tests use."""
    return _provision(stack_config)


@pytest.fixture(scope="session")
def isolated() -> devstack.Stack:
    """A database and vhost where no service runs: tests drive relays and consumers in-process."""
    return _provision(devstack.Stack(database=f"{TEST_DB}_events", vhost=f"{TEST_VHOST}_events"))


@pytest.fixture(scope="session")
def stack(provisioned: devstack.Stack) -> Iterator[devstack.Stack]:
    """All four services running against the test database and vhost."""
    processes = devstack.start(provisioned)
    try:
        # Under load average ~20 on 2 cores identity was not ready after 240 s once.
        devstack.wait_ready(provisioned, tuple(processes), timeout=420)
        yield provisioned
    finally:
        devstack.stop(processes)


def settings_for(stack: devstack.Stack, service: str, **overrides: Any) -> ServiceSettings:
    """Settings of ``service`` against ``stack``'s database and vhost (in-process use)."""
    return ServiceSettings(
        service_name=service,
        db_schema=service,
        database_url=stack.database_url(service),
        amqp_url=f"{AMQP_BASE}/{stack.vhost}",
        **overrides,
    )


@pytest.fixture
async def identity_db(isolated: devstack.Stack) -> AsyncIterator[Database]:
    """Identity's database in the isolated stack, as identity's role."""
    db = Database(settings_for(isolated, "identity"))
    yield db
    await db.dispose()


@pytest.fixture
async def rewards_db(isolated: devstack.Stack) -> AsyncIterator[Database]:
    """Rewards' database in the isolated stack, as rewards' role."""
    db = Database(settings_for(isolated, "rewards"))
    yield db
    await db.dispose()


@pytest.fixture
async def amqp(isolated: devstack.Stack) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """A broker connection to the isolated stack's vhost."""
    connection = await aio_pika.connect_robust(f"{AMQP_BASE}/{isolated.vhost}")
    yield connection
    await connection.close()
