"""The broker definitions name what the code declares: the exchange, each consuming service's
queues (with the same arguments) and bindings; users may touch only their own resources."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest

from crm_shared import devstack
from crm_shared.events.topology import QueueNames
from crm_shared.settings import ServiceSettings
from identity.settings import IdentitySettings

RABBITMQ = devstack.REPO / "infra" / "rabbitmq"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("definitions", RABBITMQ / "definitions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((RABBITMQ / "definitions.json").read_text())
    return loaded


def test_the_committed_file_is_what_the_code_generates(
    generator: ModuleType, definitions: dict[str, Any]
) -> None:
    assert definitions == json.loads(generator.render()), (
        "regenerate: .venv/bin/python infra/rabbitmq/definitions.py > "
        "infra/rabbitmq/definitions.json"
    )


def test_queue_names_and_arguments_equal_the_topology(
    generator: ModuleType, definitions: dict[str, Any]
) -> None:
    defaults = ServiceSettings()
    exchanges = {e["name"]: e for e in definitions["exchanges"]}
    # The services' exchange, and the partner exchange identity republishes to (partner
    # queues are bound there by identity, through the management API, when it makes them).
    assert set(exchanges) == {defaults.exchange, IdentitySettings().partner_exchange}
    assert all((e["type"], e["durable"]) == ("topic", True) for e in exchanges.values())
    queues = {q["name"]: q["arguments"] for q in definitions["queues"]}
    consumers = {s for s, types in generator.handled_event_types().items() if types}
    assert consumers >= {"identity", "rewards", "identity.webhooks", "identity.partners"}
    expected = set()
    for service in consumers:
        names = QueueNames(service)
        expected |= {names.events, names.parked, *map(names.retry, defaults.retry_delays_ms)}
        assert queues[names.events]["x-queue-type"] == "quorum"
        assert queues[names.events]["x-delivery-limit"] == defaults.delivery_limit
        assert queues[names.events]["x-dead-letter-routing-key"] == names.parked
        for delay in defaults.retry_delays_ms:
            assert queues[names.retry(delay)]["x-message-ttl"] == delay
            assert queues[names.retry(delay)]["x-dead-letter-routing-key"] == names.events
    assert set(queues) == expected
    bound = {(b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    assert ("rewards.events", "identity.customer.registered.v1.*") in bound
    assert all(b["source"] == defaults.exchange for b in definitions["bindings"])


def test_each_service_user_reaches_only_its_own_queues_and_events(
    definitions: dict[str, Any],
) -> None:
    permissions = {p["user"]: p for p in definitions["permissions"]}
    topics = {
        p["user"]: p
        for p in definitions["topic_permissions"]
        if p["exchange"] == ServiceSettings().exchange
    }
    for service in devstack.SUBGRAPHS:
        own = permissions[service]
        for action in ("configure", "write", "read"):
            assert re.fullmatch(own[action], f"{service}.events")
            assert re.fullmatch(own[action], f"{service}.retry.1000ms")
            assert re.fullmatch(own[action], "crm.events")
            for other in devstack.SUBGRAPHS:
                if other != service:
                    assert not re.fullmatch(own[action], f"{other}.events"), (service, action)
        assert re.fullmatch(own["write"], "amq.default")  # retry and park via the default
        assert re.match(topics[service]["write"], f"{service}.customer.registered.v1.t")
        assert not re.match(topics[service]["write"], "other.customer.registered.v1.t")
    # Only identity may publish to the partner exchange; the partner admin binds there.
    for service in devstack.SUBGRAPHS:
        assert bool(re.fullmatch(permissions[service]["write"], "crm.partners")) == (
            service == "identity"
        )
    admin = permissions["identity-partners"]
    assert re.fullmatch(admin["read"], "crm.partners")
    assert re.fullmatch(admin["configure"], "partner.0b5c")
    assert not re.fullmatch(admin["configure"], "rewards.events")
    ops = permissions["crm-ops"]
    assert re.fullmatch(ops["read"], "rewards.parked")
    assert not re.fullmatch(ops["read"], "rewards.events")
    assert ops["configure"] == "^$"
    assert all(u["password_hash"] == "" for u in definitions["users"])
