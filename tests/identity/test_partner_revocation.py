"""Revoking a partner's API client takes everything it had with it, on the real broker: its
open AMQP connection is closed and its login refused, its user, queue and bindings are gone
(RabbitMQ's management API says so), its webhook endpoints stop while the tenant's own go on;
each step is in the audit log and in the partner views; nothing can give it back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pika.exceptions
import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import create_client, staff_token
from tests.support.partners import (
    CREATE_SUBSCRIPTION,
    PartnerQueue,
    connect,
    ok,
    sharing_customer,
    touch,
)
from tests.support.waiting import eventually
from tests.support.webhook_receiver import WebhookReceiver

UPDATED = "identity.customer.updated.v1"
MANAGEMENT = "http://127.0.0.1:15672/api"
REVOKE_CLIENT = "mutation($id: ID!) { revokeApiClient(id: $id) { id active revokedAt } }"
CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id clientId enabled } }
}
"""
ENABLE = """
mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, enabled: true}) { id enabled } }
"""
VIEWS = """
{
  partnerSubscriptions { id clientId revokedAt revokedReason }
  webhookEndpoints { id clientId enabled disabledReason }
  apiClients { id active revokedAt }
}
"""
AUDIT = """
query($action: String, $recordId: String) {
  auditLog(first: 20, action: $action, recordId: $recordId) {
    edges { node { action recordType recordId details } }
  }
}
"""


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[WebhookReceiver, WebhookReceiver]]:
    partners, own = await WebhookReceiver().start(), await WebhookReceiver().start()
    yield partners, own
    await partners.stop()
    await own.stop()


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


async def _management(*path: str) -> httpx.Response:
    """A GET of RabbitMQ's management API (the test broker's administrator)."""
    async with httpx.AsyncClient(auth=("guest", "guest"), timeout=10) as client:
        return await client.get(MANAGEMENT + "/" + "/".join(quote(p, safe="") for p in path))


async def _audit(stack: devstack.Stack, admin: str, **filters: str) -> list[dict[str, Any]]:
    data = await ok(stack, AUDIT, filters, admin)
    return [e["node"] for e in data["auditLog"]["edges"]]


async def test_revoking_a_partner_client_removes_its_broker_access_and_stops_its_webhooks(
    stack: devstack.Stack, receivers: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    partner_hooks, own_hooks = receivers
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    client_id, client_secret = await create_client(
        stack, tenant_id, kind="partner", scopes=["customers:read"]
    )
    created = (
        await ok(stack, CREATE_SUBSCRIPTION, {"client": client_id, "types": [UPDATED]}, admin)
    )["createPartnerSubscription"]
    subscription = created["subscription"]
    user, queue, password = (
        subscription["brokerUser"],
        subscription["queue"],
        created["brokerPassword"],
    )
    partner_endpoint = (
        await ok(
            stack,
            CREATE_ENDPOINT,
            {"input": {"url": partner_hooks.url, "eventTypes": [UPDATED], "clientId": client_id}},
            admin,
        )
    )["createWebhookEndpoint"]["endpoint"]
    assert partner_endpoint["clientId"] == client_id
    own_endpoint = (
        await ok(
            stack,
            CREATE_ENDPOINT,
            {"input": {"url": own_hooks.url, "eventTypes": [UPDATED]}},
            admin,
        )
    )["createWebhookEndpoint"]["endpoint"]
    assert own_endpoint["clientId"] is None

    # Before: the partner gets an update on its queue and by webhook.
    ann = await sharing_customer(stack, admin, "Ann")
    await touch(stack, admin, ann, "One")
    connection = await asyncio.to_thread(connect, stack, user, password)
    partner = PartnerQueue(connection, queue)
    await eventually(partner.take, lambda got: len(got) == 1, timeout=30)

    async def counts() -> tuple[int, int]:
        return len(partner_hooks.received), len(own_hooks.received)

    await eventually(counts, lambda c: c == (1, 1), timeout=30)
    bindings = await _management("queues", stack.vhost, queue, "bindings")
    assert f"{UPDATED}.{tenant_id}" in {b["routing_key"] for b in bindings.json()}

    revoked = (await ok(stack, REVOKE_CLIENT, {"id": client_id}, admin))["revokeApiClient"]
    assert revoked["active"] is False and revoked["revokedAt"] is not None

    # The open connection is closed by the broker; a new login is refused.
    def still_reading() -> None:
        connection.process_data_events(time_limit=1)
        partner.channel.basic_get(queue)

    with pytest.raises(pika.exceptions.AMQPError):
        await asyncio.to_thread(still_reading)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        await asyncio.to_thread(connect, stack, user, password)
    # The broker has no user, no queue, no binding of it any more.
    assert (await _management("users", user)).status_code == 404
    assert (await _management("queues", stack.vhost, queue)).status_code == 404
    partner_exchange = await _management(
        "exchanges", stack.vhost, "crm.partners", "bindings", "source"
    )
    assert queue not in {b["destination"] for b in partner_exchange.json()}

    # Webhooks: the partner's endpoint gets nothing more; the tenant's own keeps receiving.
    await touch(stack, admin, ann, "Two")
    await eventually(counts, lambda c: c[1] == 2, timeout=30)
    await asyncio.sleep(1)
    assert len(partner_hooks.received) == 1

    # The partner views and the audit log show what happened and why.
    views = await ok(stack, VIEWS, None, admin)
    reason = f"API client {client_id} revoked"
    [listed] = [s for s in views["partnerSubscriptions"] if s["id"] == subscription["id"]]
    assert listed["revokedAt"] is not None and listed["revokedReason"] == reason
    endpoints = {e["id"]: e for e in views["webhookEndpoints"]}
    assert endpoints[partner_endpoint["id"]]["enabled"] is False
    assert endpoints[partner_endpoint["id"]]["disabledReason"] == reason
    assert endpoints[own_endpoint["id"]]["enabled"] is True
    [client] = [c for c in views["apiClients"] if c["id"] == client_id]
    assert client == {"id": client_id, "active": False, "revokedAt": revoked["revokedAt"]}
    [revocation] = await _audit(stack, admin, action="api_client.revoked", recordId=client_id)
    assert revocation["details"]["partner_subscriptions_revoked"] == [subscription["id"]]
    assert revocation["details"]["webhook_endpoints_disabled"] == [partner_endpoint["id"]]
    cause = {"cause": "api_client.revoked", "client_id": client_id}
    [by_subscription] = await _audit(
        stack, admin, recordId=subscription["id"], action="partner_subscription.revoked"
    )
    assert by_subscription["details"] == cause
    [by_endpoint] = await _audit(
        stack, admin, recordId=partner_endpoint["id"], action="webhook_endpoint.disabled"
    )
    assert by_endpoint["details"] == cause

    # Nothing gives it back: no token, no enabled endpoint, no new subscription or endpoint.
    async with httpx.AsyncClient(timeout=10) as http:
        token = await http.post(
            stack.url("identity", "/oauth/token"),
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"
    refused = await devstack.graphql(stack, ENABLE, {"id": partner_endpoint["id"]}, token=admin)
    assert _error(refused) == ("CONFLICT", "input.enabled")
    again = await devstack.graphql(
        stack,
        CREATE_ENDPOINT,
        {"input": {"url": partner_hooks.url, "clientId": client_id}},
        token=admin,
    )
    assert _error(again) == ("BAD_USER_INPUT", "input.clientId")
    resubscribe = await devstack.graphql(
        stack, CREATE_SUBSCRIPTION, {"client": client_id, "types": [UPDATED]}, token=admin
    )
    assert _error(resubscribe) == ("BAD_USER_INPUT", "clientId")

    # Revoking twice is harmless: nothing more to take.
    twice = (await ok(stack, REVOKE_CLIENT, {"id": client_id}, admin))["revokeApiClient"]
    assert twice["revokedAt"] == revoked["revokedAt"]
    [latest, _] = await _audit(stack, admin, action="api_client.revoked", recordId=client_id)
    assert latest["details"]["partner_subscriptions_revoked"] == []


async def test_an_endpoint_names_only_a_partner_client_of_its_own_tenant(
    stack: devstack.Stack,
) -> None:
    tenant_id, other_tenant = make_tenant(stack), make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    frontend, _ = await create_client(stack, tenant_id, kind="frontend", scopes=["customers:read"])
    foreign, _ = await create_client(stack, other_tenant, kind="partner", scopes=["customers:read"])
    url = "https://partner.example/hooks"
    for client, expected in (
        (frontend, ("BAD_USER_INPUT", "input.clientId")),
        (foreign, ("NOT_FOUND", "input.clientId")),
        ("not-an-id", ("BAD_USER_INPUT", "input.clientId")),
    ):
        result = await devstack.graphql(
            stack, CREATE_ENDPOINT, {"input": {"url": url, "clientId": client}}, token=admin
        )
        assert _error(result) == expected, client


async def test_an_endpoint_of_the_tenant_can_be_given_to_a_partner_once(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    first, _ = await create_client(stack, tenant_id, kind="partner", scopes=["customers:read"])
    second, _ = await create_client(stack, tenant_id, kind="partner", scopes=["customers:read"])
    created = await ok(
        stack, CREATE_ENDPOINT, {"input": {"url": "https://partner.example/hooks"}}, admin
    )
    endpoint = created["createWebhookEndpoint"]["endpoint"]["id"]
    give = """
    mutation($input: UpdateWebhookEndpointInput!) {
      updateWebhookEndpoint(input: $input) { clientId }
    }
    """
    given = await ok(stack, give, {"input": {"id": endpoint, "clientId": first}}, admin)
    assert given["updateWebhookEndpoint"]["clientId"] == first
    taken = await devstack.graphql(
        stack, give, {"input": {"id": endpoint, "clientId": second}}, token=admin
    )
    assert _error(taken) == ("CONFLICT", "input.clientId")
    await ok(stack, REVOKE_CLIENT, {"id": first}, admin)
    views = await ok(stack, VIEWS, None, admin)
    [mine] = [e for e in views["webhookEndpoints"] if e["id"] == endpoint]
    assert mine["enabled"] is False and mine["clientId"] == first
