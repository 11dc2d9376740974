"""A referral can pay on sign-up ("Earn a $20 credit when your next referral signs up"),
through the gateway: under a program whose qualifying kind is SIGNUP, registering with the
code pays both sides at once, without any purchase, once."""

from __future__ import annotations

from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.waiting import eventually

PROGRAM = """
mutation($input: UpdateReferralProgramInput!) {
  updateReferralProgram(input: $input) { qualifyingKind referrerPoints referredPoints }
}
"""
REGISTER = """
mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }
"""
CUSTOMER = """
query($id: ID!) {
  customer(id: $id) {
    rewards { balance }
    referralCode { code }
    referrals(first: 5) { edges { node { referredId status } } }
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


async def test_a_signup_program_pays_both_sides_when_the_referral_registers(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    program = await _ok(
        stack,
        PROGRAM,
        {"input": {"qualifyingKind": "SIGNUP", "referrerPoints": 2000, "referredPoints": 300}},
        admin,
    )
    assert program["updateReferralProgram"]["qualifyingKind"] == "SIGNUP"

    async def customer(customer_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await _ok(stack, CUSTOMER, {"id": customer_id}, admin))["customer"]
        return found

    referrer = (await _ok(stack, REGISTER, {"input": {"name": "Ann"}}, admin))["registerCustomer"]
    before = await eventually(
        lambda: customer(referrer["id"]), lambda c: c["rewards"]["balance"] > 0
    )
    code = before["referralCode"]["code"]
    referred = (
        await _ok(stack, REGISTER, {"input": {"name": "Bob", "referralCode": code}}, admin)
    )["registerCustomer"]

    paid = await eventually(
        lambda: customer(referrer["id"]),
        lambda c: c["rewards"]["balance"] == before["rewards"]["balance"] + 2000,
        timeout=30,
    )
    assert [(e["node"]["referredId"], e["node"]["status"]) for e in paid["referrals"]["edges"]] == [
        (referred["id"], "REWARDED")
    ]
    welcome = before["rewards"]["balance"]  # the sign-up rule's points, the same for both
    await eventually(
        lambda: customer(referred["id"]), lambda c: c["rewards"]["balance"] == welcome + 300
    )
