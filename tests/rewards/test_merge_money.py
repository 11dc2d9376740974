"""A merge moves money too, through the gateway: the merged customer's purchases and value
follow the survivor, their referral code refers for the survivor, and an unmerge gives back
exactly what the merge moved."""

from __future__ import annotations

from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.waiting import eventually

REGISTER = """
mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }
"""
PURCHASE = """
mutation($input: RecordPurchaseInput!) { recordPurchase(input: $input) { replayed } }
"""
MERGE = "mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { id } }"
UNMERGE = "mutation($input: UnmergeCustomersInput!) { unmergeCustomers(input: $input) { id } }"
MONEY = """
query($id: ID!) {
  customer(id: $id) {
    value { ownRevenue referralRevenue total }
    purchases(first: 10) { edges { node { orderId } } }
    referralCode { code }
    referrals(first: 10) { edges { node { referredId } } }
  }
}
"""


async def _ok(stack: devstack.Stack, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


@pytest.fixture
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


async def _purchase(
    stack: devstack.Stack, token: str, customer: str, order: str, cents: int
) -> None:
    await _ok(
        stack,
        PURCHASE,
        {
            "input": {
                "orderId": order,
                "customerId": customer,
                "amountCents": cents,
                "currency": "EUR",
                "occurredAt": "2026-11-01T10:00:00Z",
                "idempotencyKey": order,
            }
        },
        token,
    )


async def test_purchases_value_and_referrals_follow_a_merge_and_come_back_on_unmerge(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)

    async def register(name: str, code: str | None = None) -> str:
        person: dict[str, Any] = {"name": name}
        if code:
            person["referralCode"] = code
        return str((await _ok(stack, REGISTER, {"input": person}, admin))["registerCustomer"]["id"])

    async def money(customer: str) -> dict[str, Any]:
        found: dict[str, Any] = (await _ok(stack, MONEY, {"id": customer}, admin))["customer"]
        return found

    survivor = await register("Maria Souza")
    merged = await register("Maria Souza")
    code = (await money(merged))["referralCode"]["code"]
    friend = await register("Friend", code)
    await _purchase(stack, admin, survivor, "s-1", 1000)
    await _purchase(stack, admin, merged, "m-1", 7000)
    await _purchase(stack, admin, friend, "f-1", 500)
    await eventually(lambda: money(merged), lambda m: m["value"]["total"] == 7500)

    merge = await _ok(
        stack,
        MERGE,
        {"input": {"survivorId": survivor, "mergedId": merged, "reason": "same person"}},
        admin,
    )
    after = await eventually(lambda: money(survivor), lambda m: m["value"]["total"] == 8500)
    assert after["value"] == {"ownRevenue": 8000, "referralRevenue": 500, "total": 8500}
    assert sorted(e["node"]["orderId"] for e in after["purchases"]["edges"]) == ["m-1", "s-1"]
    assert [e["node"]["referredId"] for e in after["referrals"]["edges"]] == [friend]
    hidden = await money(merged)
    assert hidden["value"]["total"] == 0 and hidden["purchases"]["edges"] == []

    # The merged-away customer's code now refers for the survivor.
    second = await register("Second friend", code)
    await eventually(
        lambda: money(survivor), lambda m: len(m["referrals"]["edges"]) == 2, timeout=30
    )

    await _ok(
        stack,
        UNMERGE,
        {"input": {"mergeId": merge["mergeCustomers"]["id"], "reason": "two people after all"}},
        admin,
    )
    restored = await eventually(lambda: money(merged), lambda m: m["value"]["total"] == 7500)
    assert [e["node"]["orderId"] for e in restored["purchases"]["edges"]] == ["m-1"]
    assert sorted(e["node"]["referredId"] for e in restored["referrals"]["edges"]) == sorted(
        [friend, second]
    )
    back = await money(survivor)
    assert back["value"] == {"ownRevenue": 1000, "referralRevenue": 0, "total": 1000}
    assert back["referrals"]["edges"] == []
