"""Live updates for consoles: GraphQL subscriptions over graphql-transport-ws through the gateway,
received with a real client (gql's websockets transport)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import customer_token, staff_token
from tests.support.waiting import eventually

BALANCE = gql(
    """
    subscription Balance($id: ID!) {
      balanceChanged(customerId: $id) { id name rewards { balance } }
    }
    """
)
ADJUST = """
mutation Adjust($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance } }
"""
ACCOUNT = "query($id: ID!) { customer(id: $id) { rewards { balance } } }"


def _transport(stack: devstack.Stack, token: str | None) -> WebsocketsTransport:
    url = stack.url("gateway", "/graphql").replace("http://", "ws://")
    return WebsocketsTransport(
        url=url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token}"} if token else {},
    )


async def _customer(stack: devstack.Stack, tenant: str, admin: str, name: str) -> tuple[str, int]:
    """A registered customer whose rewards account is open, and its balance."""
    registered = await devstack.graphql(stack, REGISTER, {"input": {"name": name}}, token=admin)
    customer_id: str = registered["data"]["registerCustomer"]["id"]

    async def account() -> Any:
        answer = await devstack.graphql(stack, ACCOUNT, {"id": customer_id}, token=admin)
        return answer["data"]["customer"]["rewards"]

    opened = await eventually(account, lambda rewards: rewards is not None, timeout=20)
    return customer_id, int(opened["balance"])


async def _adjust(stack: devstack.Stack, admin: str, customer_id: str, points: int) -> None:
    answer = await devstack.graphql(
        stack,
        ADJUST,
        {
            "input": {
                "customerId": customer_id,
                "points": points,
                "reason": "goodwill",
                "idempotencyKey": str(uuid.uuid4()),
            }
        },
        token=admin,
    )
    assert "errors" not in answer, answer


async def _collect(
    events: AsyncIterator[dict[str, Any]], into: list[dict[str, Any]], ready: asyncio.Event
) -> None:
    ready.set()
    async for event in events:
        into.append(event)


async def test_a_console_sees_each_balance_change_with_fields_of_other_subgraphs(
    stack: devstack.Stack,
) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    customer_id, balance = await _customer(stack, tenant, admin, "Grace Hopper")
    seen: list[dict[str, Any]] = []

    async with Client(transport=_transport(stack, admin)) as session:
        ready = asyncio.Event()
        events = session.subscribe(GraphQLRequest(BALANCE, variable_values={"id": customer_id}))
        task = asyncio.create_task(_collect(events, seen, ready))
        await ready.wait()
        nudged = await _until_live(lambda: _adjust(stack, admin, customer_id, 1), seen)
        await _adjust(stack, admin, customer_id, 25)
        await eventually(lambda: _later(seen), lambda n: n >= nudged + 1, timeout=10)
        await _adjust(stack, admin, customer_id, 5)
        await eventually(lambda: _later(seen), lambda n: n >= nudged + 2, timeout=10)
        task.cancel()

    balances = [event["balanceChanged"]["rewards"]["balance"] for event in seen]
    assert len(seen) == nudged + 2
    assert balances[nudged:] == [balance + nudged + 25, balance + nudged + 30]
    # name is identity's field: each event was completed through the planner's entity fetch.
    assert {event["balanceChanged"]["name"] for event in seen} == {"Grace Hopper"}
    assert {event["balanceChanged"]["id"] for event in seen} == {customer_id}


async def _later(seen: list[dict[str, Any]]) -> int:
    await asyncio.sleep(0.05)
    return len(seen)


async def _until_live(nudge: Callable[[], Awaitable[object]], seen: list[dict[str, Any]]) -> int:
    """Nudge until the subscription delivers (it is live once the subgraph bound its queue);
    how many events the nudges produced."""
    for _ in range(40):
        await nudge()
        for _ in range(10):
            if seen:
                await asyncio.sleep(0.3)  # let the last nudges land too
                return len(seen)
            await asyncio.sleep(0.05)
    raise AssertionError("the subscription never delivered an event")


async def test_another_tenants_subscriber_hears_nothing(stack: devstack.Stack) -> None:
    tenant, other = make_tenant(stack), make_tenant(stack)
    admin, intruder = await staff_token(stack, tenant), await staff_token(stack, other)
    customer_id, _ = await _customer(stack, tenant, admin, "Target")
    watcher_id, _ = await _customer(stack, tenant, admin, "Watched too")
    foreign: list[dict[str, Any]] = []
    own: list[dict[str, Any]] = []

    async with (
        Client(transport=_transport(stack, intruder)) as spy,
        Client(transport=_transport(stack, admin)) as console,
    ):
        spy_ready, own_ready = asyncio.Event(), asyncio.Event()
        spying = asyncio.create_task(
            _collect(
                spy.subscribe(GraphQLRequest(BALANCE, variable_values={"id": customer_id})),
                foreign,
                spy_ready,
            )
        )
        watching = asyncio.create_task(
            _collect(
                console.subscribe(GraphQLRequest(BALANCE, variable_values={"id": customer_id})),
                own,
                own_ready,
            )
        )
        await asyncio.gather(spy_ready.wait(), own_ready.wait())
        nudged = await _until_live(lambda: _adjust(stack, admin, customer_id, 1), own)
        await _adjust(stack, admin, watcher_id, 10)
        await _adjust(stack, admin, customer_id, 10)
        # The tenant's own console hears its change; by then the spy would have heard it too.
        await eventually(lambda: _later(own), lambda n: n >= nudged + 1, timeout=10)
        await asyncio.sleep(1)
        spying.cancel()
        watching.cancel()

    assert foreign == []
    assert {e["balanceChanged"]["id"] for e in own} == {customer_id}
    assert len(own) == nudged + 1


async def test_a_customer_token_may_watch_only_its_own_balance(stack: devstack.Stack) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    mine, _ = await _customer(stack, tenant, admin, "Me")
    theirs, _ = await _customer(stack, tenant, admin, "Them")
    token = await customer_token(stack, tenant, mine)

    async with Client(transport=_transport(stack, token)) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(
                GraphQLRequest(BALANCE, variable_values={"id": theirs})
            ):
                pass
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_connection_without_a_valid_token_is_closed_before_its_ack(
    stack: devstack.Stack,
) -> None:
    url = stack.url("gateway", "/graphql").replace("http://", "ws://")
    for payload in ({}, {"authorization": "Bearer not-a-jwt"}):
        async with websockets.connect(
            url, subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_subscription_sent_over_http_is_told_to_use_a_websocket(
    stack: devstack.Stack,
) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    answer = await devstack.graphql(
        stack,
        "subscription($id: ID!) { balanceChanged(customerId: $id) { id } }",
        {"id": str(uuid.uuid4())},
        token=admin,
    )
    assert answer["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in answer["errors"][0]["message"]


INTERACTIONS = gql(
    """
    subscription Agent($channel: String) {
      interactionRecorded(channel: $channel) { platformId channel text sentimentLabel }
    }
    """
)
RECORD = """
mutation Record($input: RecordInteractionInput!) { recordInteraction(input: $input) { outcome } }
"""


async def _record(stack: devstack.Stack, token: str, channel: str, text: str) -> str:
    platform_id = uuid.uuid4().hex
    answer = await devstack.graphql(
        stack,
        RECORD,
        {
            "input": {
                "channel": channel,
                "platformId": platform_id,
                "kind": "mention",
                "createdAt": "2026-11-30T10:00:00Z",
                "text": text,
                "author": {"platformUserId": f"u-{platform_id[:8]}", "handle": "fan"},
            }
        },
        token=token,
    )
    assert "errors" not in answer, answer
    return platform_id


async def test_an_agent_sees_new_interactions_of_the_channel_it_watches(
    stack: devstack.Stack,
) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    seen: list[dict[str, Any]] = []

    async with Client(transport=_transport(stack, admin)) as session:
        ready = asyncio.Event()
        events = session.subscribe(GraphQLRequest(INTERACTIONS, variable_values={"channel": "x"}))
        task = asyncio.create_task(_collect(events, seen, ready))
        await ready.wait()
        nudged = await _until_live(lambda: _record(stack, admin, "x", "nudge"), seen)
        ignored = await _record(stack, admin, "youtube", "Not on the watched channel")
        wanted = await _record(stack, admin, "x", "I love this brand, great support!")
        await eventually(lambda: _later(seen), lambda n: n >= nudged + 1, timeout=10)
        await asyncio.sleep(0.5)
        task.cancel()

    after = [event["interactionRecorded"] for event in seen[nudged:]]
    assert [event["platformId"] for event in after] == [wanted]
    assert ignored not in str(seen)
    assert {event["interactionRecorded"]["channel"] for event in seen} == {"x"}
    assert after[0]["sentimentLabel"] == "positive"


CASES = gql("subscription { caseUpdated { id kind status openingInteraction { platformId } } }")
ASSIGN = "mutation($id: ID!) { assignCase(caseId: $id) { id status } }"


async def _complain(stack: devstack.Stack, token: str) -> str:
    platform_id = uuid.uuid4().hex
    answer = await devstack.graphql(
        stack,
        RECORD,
        {
            "input": {
                "channel": "x",
                "platformId": platform_id,
                "kind": "complaint",
                "createdAt": "2026-11-30T10:00:00Z",
                "text": "My order never arrived and nobody answers.",
                "author": {"platformUserId": f"u-{platform_id[:8]}", "handle": "upset"},
            }
        },
        token=token,
    )
    assert "errors" not in answer, answer
    return platform_id


async def test_an_agent_queue_sees_a_case_open_and_get_assigned(stack: devstack.Stack) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    seen: list[dict[str, Any]] = []

    async with Client(transport=_transport(stack, admin)) as session:
        ready = asyncio.Event()
        task = asyncio.create_task(_collect(session.subscribe(CASES), seen, ready))
        await ready.wait()
        nudged = await _until_live(lambda: _complain(stack, admin), seen)
        complaint = await _complain(stack, admin)
        await eventually(lambda: _later(seen), lambda n: n >= nudged + 1, timeout=10)
        [opened] = [
            e["caseUpdated"]
            for e in seen[nudged:]
            if e["caseUpdated"]["openingInteraction"]["platformId"] == complaint
        ]
        assigned = await devstack.graphql(stack, ASSIGN, {"id": opened["id"]}, token=admin)
        assert "errors" not in assigned, assigned
        await eventually(lambda: _later(seen), lambda n: n >= nudged + 2, timeout=10)
        task.cancel()

    assert (opened["kind"], opened["status"]) == ("complaint", "open")
    assert seen[-1]["caseUpdated"]["id"] == opened["id"]
    assert seen[-1]["caseUpdated"]["status"] == "assigned"
