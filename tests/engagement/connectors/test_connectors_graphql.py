"""Connected accounts through the gateway: a staff member connects X, the running engagement
pulls it on its own, staff see its state, pause it, and disconnect it; bad input is coded."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.engagement.connectors.fake_platforms import FakePlatforms
from tests.support.auth import staff_token
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(900)

START = """
mutation Start($input: StartConnectionInput!) {
  startConnection(input: $input) { authorizationUrl state expiresAt }
}
"""
COMPLETE = """
mutation Complete($state: String!, $code: String!) {
  completeConnection(state: $state, code: $code) { id channel platformUserId handle status }
}
"""
ACCOUNTS = """
query { connectedAccounts { id channel handle status lastSyncAt lagSeconds lastError
  rateLimitedUntil sources { source itemsPulled pages inProgress } } }
"""
PAUSE = "mutation P($id: ID!) { pauseConnection(accountId: $id) { id status } }"
DISCONNECT = "mutation D($id: ID!) { disconnectAccount(accountId: $id) { id status lastError } }"


def coded(result: dict[str, Any]) -> tuple[str, str | None]:
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


def _data(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result
    data: dict[str, Any] = result["data"]
    return data


async def test_staff_connect_x_and_the_service_pulls_it_by_itself(
    stack: devstack.Stack, stack_fake: FakePlatforms
) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant, "admin")
    started = _data(
        await devstack.graphql(
            stack,
            START,
            {"input": {"channel": "x", "redirectUri": "https://console.example.com/cb"}},
            token=admin,
        )
    )["startConnection"]
    query = parse_qs(urlsplit(started["authorizationUrl"]).query)
    assert query["state"] == [started["state"]]
    assert query["code_challenge_method"] == ["S256"]
    code = stack_fake.authorize(started["authorizationUrl"], user_id="17200003")
    account = _data(
        await devstack.graphql(
            stack, COMPLETE, {"state": started["state"], "code": code}, token=admin
        )
    )["completeConnection"]
    assert (account["channel"], account["handle"], account["status"]) == (
        "x",
        "TwitterDev",
        "active",
    )

    async def mine() -> dict[str, Any]:
        accounts = _data(await devstack.graphql(stack, ACCOUNTS, token=admin))
        return dict(next(a for a in accounts["connectedAccounts"] if a["id"] == account["id"]))

    state = await eventually(mine, lambda a: a["lastSyncAt"] is not None, timeout=120)
    assert state["sources"] == [
        {"source": "mentions", "itemsPulled": 4, "pages": 1, "inProgress": False}
    ]
    assert state["lastError"] is None and state["lagSeconds"] >= 0

    # The same state cannot be used twice.
    again = await devstack.graphql(
        stack, COMPLETE, {"state": started["state"], "code": code}, token=admin
    )
    assert coded(again) == ("BAD_USER_INPUT", "state")

    paused = _data(await devstack.graphql(stack, PAUSE, {"id": account["id"]}, token=admin))
    assert paused["pauseConnection"]["status"] == "paused"
    gone = _data(await devstack.graphql(stack, DISCONNECT, {"id": account["id"]}, token=admin))
    assert gone["disconnectAccount"] == {
        "id": account["id"],
        "status": "disconnected",
        "lastError": None,
    }
    assert len(stack_fake.revoked) == 2


async def test_an_unknown_channel_and_a_reader_are_refused_with_codes(
    stack: devstack.Stack,
) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant, "admin")
    bad = await devstack.graphql(
        stack,
        START,
        {"input": {"channel": "myspace", "redirectUri": "https://console.example.com/cb"}},
        token=admin,
    )
    assert coded(bad) == ("BAD_USER_INPUT", "channel")
    relative = await devstack.graphql(
        stack, START, {"input": {"channel": "x", "redirectUri": "/cb"}}, token=admin
    )
    assert relative["errors"][0]["extensions"]["field"] == "input.redirectUri"
    analyst = await staff_token(stack, tenant, "analyst")
    forbidden = await devstack.graphql(
        stack,
        START,
        {"input": {"channel": "x", "redirectUri": "https://console.example.com/cb"}},
        token=analyst,
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
