"""The event catalogue: generated from the event models, current, a valid AsyncAPI document,
and schemas that accept the envelopes our code writes (and refuse others)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cloudevents.core.formats.json import JSONFormat

from crm_shared import devstack
from crm_shared.events import Envelope, Event
from crm_shared.events.catalogue import PARTNER_EXCHANGE, producer_models, render, schema_uri
from crm_shared.settings import ServiceSettings
from identity.settings import IdentitySettings

CATALOGUE = devstack.REPO / "docs" / "events"
PACKAGES = ("identity", "engagement", "rewards")


@cache
def _models() -> dict[str, type[Event]]:
    return producer_models(PACKAGES)


def schema_of(event_type: str) -> dict[str, Any]:
    """The committed JSON Schema of ``event_type``."""
    found: dict[str, Any] = json.loads((CATALOGUE / "schemas" / f"{event_type}.json").read_text())
    return found


def check_envelope(body: bytes) -> None:
    """``body`` is a CloudEvent (the SDK reads it) valid against its type's committed schema."""
    event = JSONFormat().read(None, body)
    wire = json.loads(body)
    assert event.get_type() == wire["type"]
    schema = schema_of(wire["type"])
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(wire)


def test_partners_receive_on_the_partner_exchange_and_send_on_the_services_one() -> None:
    document = yaml.safe_load((CATALOGUE / "asyncapi.yaml").read_text())
    assert PARTNER_EXCHANGE == IdentitySettings().partner_exchange
    for name, operation in document["operations"].items():
        event_type = name.split(".", 1)[1]
        exchange = document["channels"][event_type]["bindings"]["amqp"]["exchange"]["name"]
        expected = ServiceSettings().exchange if operation["action"] == "send" else PARTNER_EXCHANGE
        assert exchange == expected, name


def test_the_committed_catalogue_is_a_fresh_generation() -> None:
    fresh = render(_models(), exchange=ServiceSettings().exchange)
    committed = {
        str(path.relative_to(CATALOGUE)): path.read_text()
        for path in [CATALOGUE / "asyncapi.yaml", *sorted((CATALOGUE / "schemas").glob("*.json"))]
        if path.exists()
    }
    assert sorted(committed) == sorted(fresh), "docs/events is stale: run `make catalogue`"
    for name, text in fresh.items():
        assert committed[name] == text, f"docs/events/{name} is stale: run `make catalogue`"


def test_the_catalogue_describes_producers_not_consumers_readings() -> None:
    models = _models()
    # rewards and engagement read these with fewer fields; the catalogue has the producer's.
    assert models["identity.customer.registered.v1"].__module__ == "identity.customers.events"
    assert models["identity.consent.changed.v1"].__module__ == "identity.consent.events"
    assert "policy_version" in models["identity.consent.changed.v1"].model_fields
    # Factory-made families are found too.
    assert {"engagement.erasure.completed.v1", "rewards.staff_action.recorded.v1"} <= set(models)
    assert all(t.split(".")[0] in PACKAGES or t.startswith("partner.") for t in models)


def test_facts_partners_publish_are_described_by_what_their_consumer_accepts() -> None:
    models = _models()
    purchase = models["partner.purchase.reported.v1"]
    assert purchase.__module__ == "rewards.purchases.events"
    assert {"order_id", "amount_cents", "currency"} <= set(purchase.model_fields)
    operations = yaml.safe_load((CATALOGUE / "asyncapi.yaml").read_text())["operations"]
    assert operations["send.partner.purchase.reported.v1"]["action"] == "send"
    assert operations["receive.rewards.purchase.recorded.v1"]["action"] == "receive"


def test_the_dataschema_of_every_event_is_its_schemas_published_id() -> None:
    for event_type, model in _models().items():
        assert model.dataschema() == schema_uri(event_type) == schema_of(event_type)["$id"]


def test_an_envelope_our_code_writes_validates_and_a_wrong_one_does_not() -> None:
    model = _models()["identity.customer.registered.v1"]
    event = model(customer_id=uuid.uuid4(), registered_at=datetime.now(UTC))
    envelope = Envelope.wrap(
        event,
        source="identity",
        tenant_id=uuid.uuid4(),
        subject="s",
        trace_headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    check_envelope(envelope.to_json())
    wire = json.loads(envelope.to_json())
    for broken in (
        {**wire, "data": {**wire["data"], "customer_id": "not-a-uuid"}},
        {**wire, "data": {"registered_at": wire["data"]["registered_at"]}},
        {**wire, "tenantid": None},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check_envelope(json.dumps(broken).encode())


def _asyncapi_parser() -> Path:
    tool = devstack.REPO / "infra" / "asyncapi"
    if shutil.which("node") is None or not (tool / "node_modules").exists():
        pytest.skip("node or infra/asyncapi/node_modules missing (make node installs them)")
    return tool / "validate.mjs"


def test_the_asyncapi_document_is_valid_for_the_asyncapi_parser() -> None:
    validator = _asyncapi_parser()
    result = subprocess.run(
        ["node", str(validator), str(CATALOGUE / "asyncapi.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"invalid AsyncAPI:\n{result.stdout}{result.stderr}"
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["version"] == "3.0.0"
    assert sorted(summary["messages"]) == sorted(_models())
    for event_type, message in summary["messages"].items():
        assert message["address"] == f"{event_type}.{{tenantId}}"
        # The parser resolved the payload to the schema file: the envelope with its data.
        assert {"specversion", "type", "tenantid", "data"} <= set(message["payloadProperties"])


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    validator = _asyncapi_parser()
    copy = tmp_path / "events"
    shutil.copytree(CATALOGUE, copy)
    document = copy / "asyncapi.yaml"
    run = ["node", str(validator), str(document)]
    assert subprocess.run(run, capture_output=True, timeout=60).returncode == 0
    document.write_text(document.read_text().replace("action: receive", "action: listen", 1))
    result = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "action" in result.stdout
