"""Webhooks per Standard Webhooks, end to end: events of the stack reach a real local HTTP
server that verifies them with the ``standardwebhooks`` library; retries keep the id, 410 and
exhausted retries disable the endpoint, a rotation sends two valid signatures, replay
redelivers; the delivery log says what happened; secrets are never readable again. The
events are about customers who granted partner_sharing (test_partner_consent covers the
others)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.partners import sharing_customer, touch
from tests.support.waiting import eventually
from tests.support.webhook_receiver import WebhookReceiver

REGISTERED = "identity.customer.registered.v1"
UPDATED = "identity.customer.updated.v1"
CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id url eventTypes enabled } }
}
"""
ROTATE = """
mutation($id: ID!) {
  rotateWebhookSecret(id: $id) { secret endpoint { id previousSecretExpiresAt } }
}
"""
UPDATE = """
mutation($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) { id enabled eventTypes }
}
"""
DISABLE = "mutation($id: ID!) { disableWebhookEndpoint(id: $id) { id enabled disabledReason } }"
REPLAY = """
mutation($endpoint: ID!, $event: ID, $since: DateTime) {
  replayWebhook(endpointId: $endpoint, eventId: $event, since: $since) { queued }
}
"""
ENDPOINTS = "{ webhookEndpoints { id url enabled disabledReason } }"
DELIVERIES = """
query($endpoint: ID!, $first: Int!, $after: String) {
  webhookDeliveries(endpointId: $endpoint, first: $first, after: $after) {
    edges { node {
      eventId generation status attemptCount lastStatusCode
      attempts { statusCode latencyMs attemptedAt }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    """The code and field of the first error of a GraphQL answer."""
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


async def _ok(stack: devstack.Stack, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


async def _endpoint(
    stack: devstack.Stack, admin: str, url: str, types: list[str] | None = None
) -> tuple[str, str]:
    data = await _ok(
        stack,
        CREATE,
        {"input": {"url": url, "eventTypes": types if types is not None else [UPDATED]}},
        admin,
    )
    created = data["createWebhookEndpoint"]
    assert created["secret"].startswith("whsec_")
    return created["endpoint"]["id"], created["secret"]


async def _register(stack: devstack.Stack, admin: str) -> str:
    """A customer who granted partner_sharing, then changed: one updated event to deliver."""
    customer_id = await sharing_customer(stack, admin, "Ann")
    await touch(stack, admin, customer_id, "A")
    return customer_id


async def _deliveries(stack: devstack.Stack, admin: str, endpoint: str) -> list[dict[str, Any]]:
    data = await _ok(stack, DELIVERIES, {"endpoint": endpoint, "first": 20}, admin)
    return [e["node"] for e in data["webhookDeliveries"]["edges"]]


async def _enabled(stack: devstack.Stack, admin: str, endpoint: str) -> dict[str, Any]:
    data = await _ok(stack, ENDPOINTS, {}, admin)
    (found,) = [e for e in data["webhookEndpoints"] if e["id"] == endpoint]
    return dict(found)


async def test_events_arrive_signed_and_retries_carry_the_same_id(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    endpoint, secret = await _endpoint(stack, admin, receiver.url)
    receiver.answers = [500, 503]  # then the default 204
    customer_id = await _register(stack, admin)

    async def received() -> int:
        return len(receiver.received)

    await eventually(received, lambda n: n >= 3, timeout=30)
    first, second, third = receiver.received[:3]
    assert {r.webhook_id for r in (first, second, third)} == {first.event["id"]}
    assert all(r.verifies_with(secret) for r in (first, second, third))
    assert [r.answered for r in (first, second, third)] == [500, 503, 204]
    event = third.event
    assert (event["type"], event["subject"], event["tenantid"]) == (
        UPDATED,
        customer_id,
        tenant_id,
    )
    assert third.headers["content-type"] == "application/cloudevents+json"
    assert not third.verifies_with("whsec_" + "A" * 43 + "=")  # another secret does not

    [delivery] = await eventually(
        lambda: _deliveries(stack, admin, endpoint),
        lambda d: len(d) == 1 and d[0]["status"] == "succeeded",
        timeout=10,
    )
    assert delivery["eventId"] == event["id"]
    assert delivery["attemptCount"] == 3
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 503, 204]
    assert all(a["latencyMs"] >= 0 for a in delivery["attempts"])
    # The registered event is not a type the endpoint asked for.
    assert receiver.of_type(REGISTERED) == []


async def test_410_disables_the_endpoint(stack: devstack.Stack, receiver: WebhookReceiver) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    endpoint, _ = await _endpoint(stack, admin, receiver.url)
    receiver.default = 410
    await _register(stack, admin)
    found = await eventually(
        lambda: _enabled(stack, admin, endpoint), lambda e: not e["enabled"], timeout=30
    )
    assert "410" in found["disabledReason"]
    await _register(stack, admin)  # kept for replay, but not delivered to a disabled endpoint
    await asyncio.sleep(1)
    [gone] = await _deliveries(stack, admin, endpoint)
    assert (gone["status"], gone["lastStatusCode"], gone["attemptCount"]) == ("failed", 410, 1)
    assert len(receiver.received) == 1


async def test_exhausted_retries_disable_the_endpoint(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    endpoint, _ = await _endpoint(stack, admin, receiver.url)
    receiver.default = 503
    await _register(stack, admin)
    # The test stack's window is 4 s with back-off from 0.2 s.
    found = await eventually(
        lambda: _enabled(stack, admin, endpoint), lambda e: not e["enabled"], timeout=40
    )
    assert "retries exhausted" in found["disabledReason"]
    [delivery] = await _deliveries(stack, admin, endpoint)
    assert delivery["status"] == "failed"
    assert delivery["attemptCount"] == len(receiver.received) >= 3
    assert len({r.webhook_id for r in receiver.received}) == 1


async def test_a_rotation_sends_two_signatures_both_valid(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    endpoint, old = await _endpoint(stack, admin, receiver.url)
    rotated = (await _ok(stack, ROTATE, {"id": endpoint}, admin))["rotateWebhookSecret"]
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated["endpoint"]["previousSecretExpiresAt"] is not None
    await _register(stack, admin)

    async def received() -> int:
        return len(receiver.received)

    await eventually(received, lambda n: n >= 1, timeout=30)
    request = receiver.received[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verifies_with(new)
    assert request.verifies_with(old)


async def test_replay_redelivers_one_event_or_all_since_a_time(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id, other_tenant = make_tenant(stack), make_tenant(stack)
    admin, other_admin = await staff_token(stack, tenant_id), await staff_token(stack, other_tenant)
    endpoint, secret = await _endpoint(stack, admin, receiver.url)
    since = datetime.now(UTC).isoformat()
    await _register(stack, admin)
    await _register(stack, admin)

    async def received() -> int:
        return len(receiver.received)

    await eventually(received, lambda n: n >= 2, timeout=30)
    first_id = receiver.received[0].webhook_id
    replayed = await _ok(stack, REPLAY, {"endpoint": endpoint, "event": first_id}, admin)
    assert replayed["replayWebhook"]["queued"] == 1
    await eventually(received, lambda n: n >= 3, timeout=30)
    again = receiver.received[2]
    assert again.webhook_id == first_id and again.verifies_with(secret)

    everything = await _ok(stack, REPLAY, {"endpoint": endpoint, "since": since}, admin)
    assert everything["replayWebhook"]["queued"] == 2
    await eventually(received, lambda n: n >= 5, timeout=30)
    ids = [r.webhook_id for r in receiver.received]
    assert sorted(ids[3:]) == sorted(ids[:2])
    generations = sorted(d["generation"] for d in await _deliveries(stack, admin, endpoint))
    assert generations == [0, 0, 1, 1, 2]

    # Another tenant sees none of it and cannot replay it.
    assert (await _ok(stack, ENDPOINTS, {}, other_admin))["webhookEndpoints"] == []
    refused = await devstack.graphql(
        stack, REPLAY, {"endpoint": endpoint, "event": first_id}, token=other_admin
    )
    assert _error(refused) == ("NOT_FOUND", "endpointId")


async def test_secrets_are_not_readable_and_bad_input_is_named(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    fields = await _ok(stack, '{ __type(name: "WebhookEndpoint") { fields { name } } }', {}, admin)
    names = {f["name"] for f in fields["__type"]["fields"]}
    assert not {n for n in names if "secret" in n.lower()} - {"previousSecretExpiresAt"}
    for bad, field in (
        ({"url": "ftp://example.com/x"}, "input.url"),
        ({"url": receiver.url, "eventTypes": ["nope"]}, "input.eventTypes"),
    ):
        result = await devstack.graphql(stack, CREATE, {"input": bad}, token=admin)
        assert _error(result) == ("BAD_USER_INPUT", field)
    endpoint, _ = await _endpoint(stack, admin, receiver.url, types=[])
    disabled = (await _ok(stack, DISABLE, {"id": endpoint}, admin))["disableWebhookEndpoint"]
    assert disabled["enabled"] is False
    refused = await devstack.graphql(
        stack, REPLAY, {"endpoint": endpoint, "since": "2020-01-01T00:00:00Z"}, token=admin
    )
    assert _error(refused) == ("CONFLICT", "endpointId")
    enabled = await _ok(stack, UPDATE, {"input": {"id": endpoint, "enabled": True}}, admin)
    assert enabled["updateWebhookEndpoint"]["enabled"] is True
    agent = await staff_token(stack, tenant_id, role="agent")
    forbidden = await devstack.graphql(stack, ENDPOINTS, token=agent)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_endpoints_on_internal_addresses_are_refused(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    """No tenant admin can point deliveries at the network the services live in (the local
    stack allows only 127.0.0.1 and ::1, where the tests' receivers listen)."""
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    internal = [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://0.0.0.0:5432/",
        "http://[fd00::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
    ]
    for url in internal:
        result = await devstack.graphql(stack, CREATE, {"input": {"url": url}}, token=admin)
        assert _error(result) == ("BAD_USER_INPUT", "input.url"), (url, result)
    endpoint, _ = await _endpoint(stack, admin, receiver.url)
    moved = await devstack.graphql(
        stack, UPDATE, {"input": {"id": endpoint, "url": internal[0]}}, token=admin
    )
    assert _error(moved) == ("BAD_USER_INPUT", "input.url")
    listed = await _ok(stack, ENDPOINTS, {}, admin)
    assert [e["url"] for e in listed["webhookEndpoints"]] == [receiver.url]
