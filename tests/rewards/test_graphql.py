"""The ledger through the gateway: spending with a key, history, corrections, clear errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import customer_token, staff_token
from tests.support.waiting import eventually

SPEND = """
mutation Spend($input: SpendPointsInput!) {
  spendPoints(input: $input) { balance replayed entry { id kind points reason } }
}
"""
ADJUST = """
mutation Adjust($input: AdjustPointsInput!) {
  adjustPoints(input: $input) { balance replayed entry { id kind points } }
}
"""
REVERSE = """
mutation Reverse($input: ReverseEntryInput!) {
  reverseEntry(input: $input) { balance entry { id kind points reversesEntryId } }
}
"""
REWARDS = """
query Rewards($id: ID!) {
  customer(id: $id) {
    rewards {
      balance
      expiringSoon(days: 400) { points expiresAt }
      history(first: 10) { edges { node { kind points reason } } pageInfo { hasNextPage } }
    }
  }
}
"""


@pytest.fixture(scope="module")
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


async def _customer_with_welcome_points(stack: devstack.Stack, tenant: str) -> str:
    admin = await staff_token(stack, tenant)
    registered = await devstack.graphql(stack, REGISTER, {"input": {"name": "Ada"}}, token=admin)
    assert "errors" not in registered, registered
    customer_id: str = registered["data"]["registerCustomer"]["id"]

    async def balance() -> Any:
        result = await devstack.graphql(stack, REWARDS, {"id": customer_id}, token=admin)
        return result["data"]["customer"]["rewards"]

    await eventually(balance, lambda r: r is not None and r["balance"] == 100, timeout=20)
    return customer_id


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    [error] = result["errors"]
    return error["extensions"]["code"], error["extensions"].get("field")


async def test_a_spend_sent_twice_with_one_key_spends_once(
    stack: devstack.Stack, tenant: str
) -> None:
    customer_id = await _customer_with_welcome_points(stack, tenant)
    token = await customer_token(stack, tenant, customer_id)
    spend = {"customerId": customer_id, "points": 30, "reason": "coffee", "idempotencyKey": "k-1"}

    first = await devstack.graphql(stack, SPEND, {"input": spend}, token=token)
    again = await devstack.graphql(stack, SPEND, {"input": spend}, token=token)

    assert "errors" not in first, first
    assert first["data"]["spendPoints"]["balance"] == 70
    assert first["data"]["spendPoints"]["replayed"] is False
    assert again["data"]["spendPoints"]["replayed"] is True
    assert again["data"]["spendPoints"]["entry"] == first["data"]["spendPoints"]["entry"]
    seen = await devstack.graphql(stack, REWARDS, {"id": customer_id}, token=token)
    rewards = seen["data"]["customer"]["rewards"]
    assert rewards["balance"] == 70
    assert [e["node"] for e in rewards["history"]["edges"]] == [
        {"kind": "spend", "points": -30, "reason": "coffee"},
        {"kind": "earn", "points": 100, "reason": "welcome"},
    ]
    assert [p["points"] for p in rewards["expiringSoon"]] == [70]

    other = dict(spend, points=31)
    conflict = await devstack.graphql(stack, SPEND, {"input": other}, token=token)
    assert _error(conflict) == ("CONFLICT", "idempotencyKey")
    assert conflict["errors"][0]["message"] == "idempotency key reused with different content"


@pytest.mark.parametrize(
    "change,code,field",
    [
        ({"points": 0}, "BAD_USER_INPUT", "points"),
        ({"points": 1000}, "BAD_USER_INPUT", "points"),
        ({"reason": " "}, "BAD_USER_INPUT", "reason"),
        ({"customerId": "not-an-id"}, "BAD_USER_INPUT", "customerId"),
        ({"customerId": str(uuid.uuid4())}, "NOT_FOUND", "customerId"),
    ],
)
async def test_bad_spends_get_clear_errors(
    stack: devstack.Stack, tenant: str, change: dict[str, Any], code: str, field: str
) -> None:
    customer_id = await _customer_with_welcome_points(stack, tenant)
    spend = {"customerId": customer_id, "points": 5, "reason": "x", "idempotencyKey": "k"}
    result = await devstack.graphql(
        stack, SPEND, {"input": {**spend, **change}}, token=await staff_token(stack, tenant)
    )
    assert _error(result) == (code, field)


async def test_a_customer_token_spends_only_its_own_points(
    stack: devstack.Stack, tenant: str
) -> None:
    mine = await _customer_with_welcome_points(stack, tenant)
    theirs = await _customer_with_welcome_points(stack, tenant)
    token = await customer_token(stack, tenant, mine)
    spend = {"customerId": theirs, "points": 5, "reason": "x", "idempotencyKey": "k"}
    result = await devstack.graphql(stack, SPEND, {"input": spend}, token=token)
    assert _error(result) == ("FORBIDDEN", None)


async def test_staff_adjust_and_reverse_with_a_reason(stack: devstack.Stack, tenant: str) -> None:
    customer_id = await _customer_with_welcome_points(stack, tenant)
    agent = await staff_token(stack, tenant, "agent")
    adjust = {
        "customerId": customer_id,
        "points": -40,
        "reason": "double credit",
        "idempotencyKey": "a-1",
    }

    adjusted = await devstack.graphql(stack, ADJUST, {"input": adjust}, token=agent)
    assert "errors" not in adjusted, adjusted
    assert adjusted["data"]["adjustPoints"]["balance"] == 60
    entry = adjusted["data"]["adjustPoints"]["entry"]
    assert (entry["kind"], entry["points"]) == ("adjustment", -40)

    reverse = {"entryId": entry["id"], "reason": "it was right", "idempotencyKey": "r-1"}
    reversed_ = await devstack.graphql(stack, REVERSE, {"input": reverse}, token=agent)
    assert "errors" not in reversed_, reversed_
    assert reversed_["data"]["reverseEntry"]["balance"] == 100
    assert reversed_["data"]["reverseEntry"]["entry"]["reversesEntryId"] == entry["id"]
    twice = await devstack.graphql(
        stack, REVERSE, {"input": dict(reverse, idempotencyKey="r-2")}, token=agent
    )
    assert _error(twice) == ("CONFLICT", "entryId")

    # An analyst reads points but may not adjust them.
    analyst = await staff_token(stack, tenant, "analyst")
    refused = await devstack.graphql(
        stack, ADJUST, {"input": dict(adjust, idempotencyKey="a-2")}, token=analyst
    )
    assert _error(refused) == ("FORBIDDEN", None)
