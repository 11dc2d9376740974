"""partner_sharing end to end: a partner's broker queue (read with pika) and its webhooks (a
real HTTP receiver) get events about customers who granted it, and nothing about a customer
who never did or who withdrew it, not even a retry or a replay; tenant-level facts (an offer
published) reach them regardless."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.partners import (
    PartnerQueue,
    connect,
    customer,
    ok,
    partner_sharing,
    sharing_customer,
    subscribe,
    touch,
)
from tests.support.waiting import eventually
from tests.support.webhook_receiver import WebhookReceiver

UPDATED = "identity.customer.updated.v1"
OFFER_PUBLISHED = "rewards.offer.published.v1"
CREATE_OFFER = "mutation($input: CreateOfferInput!) { createOffer(input: $input) { id } }"
PUBLISH_OFFER = "mutation($id: ID!) { publishOffer(offerId: $id) { id status } }"
CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id } }
}
"""
REPLAY = """
mutation($endpoint: ID!, $event: ID) {
  replayWebhook(endpointId: $endpoint, eventId: $event) { queued }
}
"""
DELIVERIES = """
query($endpoint: ID!) {
  webhookDeliveries(endpointId: $endpoint, first: 50) {
    edges { node { eventId generation status attemptCount lastError } }
  }
}
"""


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


def _about(events: list[dict[str, Any]]) -> Counter[tuple[str, str | None]]:
    return Counter((e["type"], e["data"].get("customer_id")) for e in events)


async def test_a_partner_queue_gets_only_consenting_customers_and_tenant_facts(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    created = await subscribe(stack, tenant_id, admin, [UPDATED, OFFER_PUBLISHED])
    connection = await asyncio.to_thread(
        connect, stack, created["subscription"]["brokerUser"], created["brokerPassword"]
    )
    partner = PartnerQueue(connection, created["subscription"]["queue"])
    try:
        ann = await sharing_customer(stack, admin, "Ann")
        bob = await customer(stack, admin, "Bob")  # never asked: not granted
        cid = await sharing_customer(stack, admin, "Cid")
        for who in (ann, bob, cid):
            await touch(stack, admin, who, "One")
        await eventually(partner.take, lambda got: len(got) >= 2, timeout=30)

        await partner_sharing(stack, admin, cid, granted=False)  # Cid withdraws
        for who in (ann, bob, cid):
            await touch(stack, admin, who, "Two")
        marketer = await staff_token(stack, tenant_id, "marketer")
        offer = await ok(
            stack,
            CREATE_OFFER,
            {"input": {"name": "Ten off", "kind": "PERCENTAGE", "percentOff": 10}},
            marketer,
        )
        await ok(stack, PUBLISH_OFFER, {"id": offer["createOffer"]["id"]}, marketer)

        await eventually(partner.take, lambda got: len(got) >= 4, timeout=30)
        await asyncio.sleep(2)  # anything else that would arrive, arrives
        got = await partner.take()
    finally:
        await asyncio.to_thread(partner.close)

    assert _about(got) == Counter(
        {(UPDATED, ann): 2, (UPDATED, cid): 1, (OFFER_PUBLISHED, None): 1}
    )
    assert not [e for e in got if bob in str(e)]  # nothing names Bob, anywhere
    (published,) = [e for e in got if e["type"] == OFFER_PUBLISHED]
    assert published["data"]["offer_id"] == offer["createOffer"]["id"]
    assert all(e["tenantid"] == tenant_id for e in got)


async def _deliveries(stack: devstack.Stack, admin: str, endpoint: str) -> list[dict[str, Any]]:
    data = await ok(stack, DELIVERIES, {"endpoint": endpoint}, admin)
    return [e["node"] for e in data["webhookDeliveries"]["edges"]]


async def _endpoint(stack: devstack.Stack, admin: str, url: str) -> str:
    data = await ok(stack, CREATE_ENDPOINT, {"input": {"url": url, "eventTypes": [UPDATED]}}, admin)
    endpoint: str = data["createWebhookEndpoint"]["endpoint"]["id"]
    return endpoint


async def test_webhooks_withhold_customers_without_partner_sharing_and_replay_checks_again(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    endpoint = await _endpoint(stack, admin, receiver.url)
    ann = await sharing_customer(stack, admin, "Ann")
    bob = await customer(stack, admin, "Bob")
    await touch(stack, admin, ann, "A")
    await touch(stack, admin, bob, "B")

    settled = await eventually(
        lambda: _deliveries(stack, admin, endpoint),
        lambda d: len(d) == 2 and all(x["status"] != "pending" for x in d),
        timeout=30,
    )
    assert [r.event["data"]["customer_id"] for r in receiver.received] == [ann]
    by_status = {d["status"]: d for d in settled}
    assert set(by_status) == {"succeeded", "withheld"}
    withheld = by_status["withheld"]
    assert withheld["attemptCount"] == 0  # no request was made
    assert "partner_sharing" in withheld["lastError"]

    # A replay is checked again when it is sent: still withheld ...
    replayed = await ok(stack, REPLAY, {"endpoint": endpoint, "event": withheld["eventId"]}, admin)
    assert replayed["replayWebhook"]["queued"] == 1
    again = await eventually(
        lambda: _deliveries(stack, admin, endpoint),
        lambda d: len(d) == 3 and all(x["status"] != "pending" for x in d),
        timeout=30,
    )
    assert [d["status"] for d in again if d["eventId"] == withheld["eventId"]] == [
        "withheld",
        "withheld",
    ]
    # ... until Bob grants it.
    await partner_sharing(stack, admin, bob, granted=True)
    await ok(stack, REPLAY, {"endpoint": endpoint, "event": withheld["eventId"]}, admin)

    async def received() -> int:
        return len(receiver.received)

    await eventually(received, lambda n: n >= 2, timeout=30)
    assert receiver.received[1].webhook_id == withheld["eventId"]
    assert receiver.received[1].event["data"]["customer_id"] == bob


async def test_a_withdrawal_stops_the_retries_of_what_was_waiting(
    stack: devstack.Stack, receiver: WebhookReceiver
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    endpoint = await _endpoint(stack, admin, receiver.url)
    receiver.default = 503  # the partner is down: the delivery is retried
    ann = await sharing_customer(stack, admin, "Ann")
    await touch(stack, admin, ann, "A")

    async def received() -> int:
        return len(receiver.received)

    await eventually(received, lambda n: n >= 1, timeout=30)
    await partner_sharing(stack, admin, ann, granted=False)
    [delivery] = await eventually(
        lambda: _deliveries(stack, admin, endpoint),
        lambda d: len(d) == 1 and d[0]["status"] != "pending",
        timeout=30,
    )
    assert delivery["status"] == "withheld"
    tried = len(receiver.received)
    assert delivery["attemptCount"] == tried  # each request recorded; none after withdrawal
    receiver.default = 204
    await asyncio.sleep(1.5)
    assert len(receiver.received) == tried
