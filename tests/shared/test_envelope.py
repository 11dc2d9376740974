"""The CloudEvents envelope: required attributes, tenant, trace context, routing."""

from __future__ import annotations

import uuid

import orjson
import pytest
from pydantic import ValidationError

from crm_shared.events import Envelope, Event


class ThingHappened(Event):
    type = "test.thing.happened.v1"
    thing_id: uuid.UUID


def test_an_envelope_is_a_structured_cloudevent_with_tenant_and_trace() -> None:
    tenant_id, thing_id = uuid.uuid4(), uuid.uuid4()
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    envelope = Envelope.wrap(
        ThingHappened(thing_id=thing_id),
        source="/crm/test",
        tenant_id=tenant_id,
        subject=str(thing_id),
        trace_headers={"traceparent": traceparent},
    )
    wire = orjson.loads(envelope.to_json())
    assert wire["specversion"] == "1.0"
    assert {"id", "source", "type", "time", "subject", "datacontenttype", "dataschema"} <= set(wire)
    assert wire["type"] == "test.thing.happened.v1"
    assert wire["tenantid"] == str(tenant_id)
    assert wire["traceparent"] == traceparent
    assert wire["dataschema"].endswith("/test.thing.happened.v1.json")
    assert wire["data"] == {"thing_id": str(thing_id)}
    assert envelope.routing_key == f"test.thing.happened.v1.{tenant_id}"
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_a_body_without_the_required_attributes_is_not_an_envelope() -> None:
    with pytest.raises(ValidationError):
        Envelope.from_json(b'{"type": "x", "data": {}}')


def test_a_consumer_reads_an_event_with_fields_it_does_not_know() -> None:
    thing_id = uuid.uuid4()
    event = ThingHappened.model_validate({"thing_id": str(thing_id), "added_later": 1})
    assert event.thing_id == thing_id
