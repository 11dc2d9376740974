"""``make run`` and the benchmarks can run several processes of a service: the names and
ports devstack gives them, and how ``WORKERS_<SERVICE>`` / ``--workers`` are read."""

from __future__ import annotations

import pytest

from crm_shared import devstack
from infra.local.run import workers


def test_replicas_are_named_after_their_service_and_share_its_environment() -> None:
    assert devstack.replica_names("rewards", 1) == ["rewards"]
    assert devstack.replica_names("rewards", 3) == ["rewards", "rewards-2", "rewards-3"]
    assert devstack.service_of("rewards-2") == "rewards"
    stack = devstack.Stack()
    env = stack.env("rewards-2")
    assert env["REWARDS_DATABASE_URL"] == stack.database_url("rewards")
    assert env["OTEL_SERVICE_NAME"] == "rewards"


def test_the_gateway_stays_one_process() -> None:
    with pytest.raises(ValueError, match="gateway"):
        devstack.start(devstack.Stack(), ("gateway",), replicas={"gateway": 2})


def test_workers_come_from_the_environment_and_the_command_line() -> None:
    assert workers([], {}) == {}
    assert workers([], {"WORKERS_REWARDS": "2"}) == {"rewards": 2}
    assert workers(["--workers", "rewards=3", "--workers", "engagement=2"], {}) == {
        "rewards": 3,
        "engagement": 2,
    }
    assert workers(["--workers", "rewards=3"], {"WORKERS_REWARDS": "2"}) == {"rewards": 3}
    for bad in (["--workers", "gateway=2"], ["--workers", "rewards=x"], ["--workers", "rewards=0"]):
        with pytest.raises(SystemExit):
            workers(bad, {})
