"""Drill: a service started while the broker is down waits for it instead of failing to start.

What it does: rewards is started (as a process) against a private RabbitMQ node that is not
running yet; after a few seconds the node is started. What it checks: the process is still
alive while the broker is down, and becomes ready by itself once the broker is up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from crm_shared import devstack
from tests.conftest import PORT_BASE
from tests.support.private_broker import PrivateBroker


@pytest.fixture
def absent_broker() -> Iterator[PrivateBroker]:
    """A private node, configured but not started."""
    node = PrivateBroker()
    yield node
    node.close()


@pytest.mark.timeout(180)
def test_a_service_started_before_the_broker_waits_and_becomes_ready(
    isolated: devstack.Stack, absent_broker: PrivateBroker
) -> None:
    stack = devstack.Stack(
        database=isolated.database,
        vhost="",
        amqp_host=absent_broker.host,
        ports={
            "gateway": PORT_BASE + 30,
            "identity": PORT_BASE + 31,
            "engagement": PORT_BASE + 32,
            "rewards": PORT_BASE + 33,
        },
        extra_env={"LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true"},
    )
    processes = devstack.start(stack, ("rewards",))
    try:
        time.sleep(8)
        assert processes["rewards"].poll() is None, "rewards gave up while the broker was down"
        absent_broker.start()
        devstack.wait_ready(stack, ("rewards",), timeout=60)
    finally:
        devstack.stop(processes)
