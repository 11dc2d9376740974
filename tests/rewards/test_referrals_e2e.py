"""Referrals and purchases end to end: identity's registration with a code, a partner's
purchase over HTTP, the customer graph through the gateway, a held referral approved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import client_token, staff_token
from tests.support.waiting import eventually

REGISTER = """
mutation Register($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }
"""
CUSTOMER = """
query Customer($id: ID!) {
  customer(id: $id) {
    rewards { balance }
    referralCode { code link }
    referrals(first: 5) { edges { node { referredId status holdReasons } } }
    purchases(first: 5) { edges { node { orderId amountCents refundedCents currency kind } } }
    value { ownRevenue referralRevenue total currency }
  }
}
"""
HELD = "query { heldReferrals(first: 10) { edges { node { id referredId holdReasons } } } }"
APPROVE = """
mutation Approve($input: ApproveReferralInput!) { approveReferral(input: $input) { status } }
"""
RECORD = """
mutation Record($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { replayed purchase { id orderId amountCents } }
}
"""
PROGRAM = """
mutation Program($input: UpdateReferralProgramInput!) {
  updateReferralProgram(input: $input) { referrerPoints referredPoints velocityLimit }
}
"""


@pytest.fixture(scope="module")
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    [error] = result["errors"]
    return error["extensions"]["code"], error["extensions"].get("field")


async def _register(stack: devstack.Stack, tenant: str, email: str, code: str | None = None) -> str:
    admin = await staff_token(stack, tenant)
    person: dict[str, Any] = {
        "name": "Ann",
        "contactPoints": [{"kind": "EMAIL", "value": email, "verified": True}],
    }
    if code is not None:
        person["referralCode"] = code
    result = await devstack.graphql(stack, REGISTER, {"input": person}, token=admin)
    assert "errors" not in result, result
    customer_id: str = result["data"]["registerCustomer"]["id"]
    await eventually(
        lambda: _customer(stack, tenant, customer_id),
        lambda c: c["rewards"] is not None and c["referralCode"] is not None,
        timeout=20,
    )
    return customer_id


async def _customer(stack: devstack.Stack, tenant: str, customer_id: str) -> dict[str, Any]:
    admin = await staff_token(stack, tenant)
    result = await devstack.graphql(stack, CUSTOMER, {"id": customer_id}, token=admin)
    assert "errors" not in result, result
    customer: dict[str, Any] = result["data"]["customer"]
    return customer


async def _post(
    stack: devstack.Stack, path: str, body: Any, token: str, key: str | None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(stack.url("rewards", path), json=body, headers=headers)


def _purchase(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "order_id": f"o-{uuid.uuid4().hex[:8]}",
        "customer_id": customer_id,
        "amount_cents": 4_000,
        "currency": "EUR",
        "occurred_at": datetime.now(UTC).isoformat(),
        **overrides,
    }


async def test_a_referral_through_registration_and_a_partner_purchase_pays_both_sides(
    stack: devstack.Stack, tenant: str
) -> None:
    referrer = await _register(stack, tenant, f"{uuid.uuid4().hex[:8]}@example.com")
    code = (await _customer(stack, tenant, referrer))["referralCode"]["code"]
    referred = await _register(stack, tenant, f"{uuid.uuid4().hex[:8]}@example.com", code)
    await eventually(
        lambda: _customer(stack, tenant, referrer),
        lambda c: len(c["referrals"]["edges"]) == 1,
        timeout=20,
    )
    partner = await client_token(stack, tenant, ["purchases:write"], kind="partner")
    body = _purchase(referred)

    first = await _post(stack, "/purchases", body, partner, "order-1")
    again = await _post(stack, "/purchases", body, partner, "order-1")
    changed = await _post(stack, "/purchases", {**body, "amount_cents": 1}, partner, "order-1")
    keyless = await _post(stack, "/purchases", body, partner, None)
    invalid = await _post(stack, "/purchases", {**body, "amount_cents": -5}, partner, "order-2")
    refunded = await _post(
        stack,
        "/refunds",
        {"order_id": body["order_id"], "amount_cents": 1_000, "occurred_at": body["occurred_at"]},
        partner,
        "refund-1",
    )

    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert changed.status_code == 409
    assert changed.json()["error"]["field"] == "Idempotency-Key"
    assert keyless.status_code == 422
    assert keyless.json()["error"] == {
        "code": "BAD_USER_INPUT",
        "field": "Idempotency-Key",
        "message": "Idempotency-Key: required (a key of your own for this request)",
    }
    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "amount_cents"
    assert refunded.status_code == 201, refunded.text
    assert refunded.json()["amount_cents"] == 1_000

    seen = await _customer(stack, tenant, referrer)
    assert seen["rewards"]["balance"] == 100 + 500
    assert [e["node"] for e in seen["referrals"]["edges"]] == [
        {"referredId": referred, "status": "REWARDED", "holdReasons": []}
    ]
    assert seen["value"] == {
        "ownRevenue": 0,
        "referralRevenue": 3_000,
        "total": 3_000,
        "currency": "EUR",
    }
    assert seen["referralCode"]["link"].endswith(f"/r/{code}")
    bought = await _customer(stack, tenant, referred)
    assert bought["rewards"]["balance"] == 100 + 250
    assert [e["node"] for e in bought["purchases"]["edges"]] == [
        {
            "orderId": body["order_id"],
            "amountCents": 4_000,
            "refundedCents": 1_000,
            "currency": "EUR",
            "kind": "PURCHASE",
        }
    ]


async def test_a_shared_mailbox_is_held_and_staff_approval_pays(
    stack: devstack.Stack, tenant: str
) -> None:
    local = uuid.uuid4().hex[:8]
    referrer = await _register(stack, tenant, f"{local}@gmail.com")
    code = (await _customer(stack, tenant, referrer))["referralCode"]["code"]
    # The same Gmail mailbox: identity sees another address, the fingerprint does not.
    referred = await _register(stack, tenant, f"{local[:4]}.{local[4:]}+2@gmail.com", code)
    await eventually(
        lambda: _customer(stack, tenant, referrer),
        lambda c: len(c["referrals"]["edges"]) == 1,
        timeout=20,
    )
    admin = await staff_token(stack, tenant)
    recorded = await devstack.graphql(
        stack,
        RECORD,
        {
            "input": {
                "orderId": f"o-{local}",
                "customerId": referred,
                "amountCents": 2_000,
                "currency": "EUR",
                "occurredAt": datetime.now(UTC).isoformat(),
                "idempotencyKey": f"k-{local}",
            }
        },
        token=admin,
    )
    assert "errors" not in recorded, recorded

    held = await devstack.graphql(stack, HELD, token=admin)
    [node] = [
        e["node"]
        for e in held["data"]["heldReferrals"]["edges"]
        if e["node"]["referredId"] == referred
    ]
    assert node["holdReasons"] == ["SELF_REFERRAL"]
    assert (await _customer(stack, tenant, referrer))["rewards"]["balance"] == 100

    marketer = await staff_token(stack, tenant, "marketer")
    forbidden = await devstack.graphql(
        stack, APPROVE, {"input": {"referralId": node["id"]}}, token=marketer
    )
    approved = await devstack.graphql(
        stack, APPROVE, {"input": {"referralId": node["id"], "note": "same household"}}, token=admin
    )

    assert _error(forbidden) == ("FORBIDDEN", None)
    assert approved["data"]["approveReferral"]["status"] == "REWARDED"
    assert (await _customer(stack, tenant, referrer))["rewards"]["balance"] == 100 + 500


@pytest.mark.parametrize(
    ("operation", "variables", "field"),
    [
        (RECORD, {"amountCents": 0}, "input.amountCents"),
        (RECORD, {"currency": "euros"}, "input.currency"),
        (RECORD, {"customerId": "nope"}, "input.customerId"),
        (RECORD, {"idempotencyKey": " "}, "input.idempotencyKey"),
        (PROGRAM, {"velocityLimit": 0}, "input.velocityLimit"),
        (PROGRAM, {"linkBase": "ftp://x"}, "input.linkBase"),
    ],
)
async def test_bad_input_is_a_coded_error_naming_the_field(
    stack: devstack.Stack,
    tenant: str,
    operation: str,
    variables: dict[str, Any],
    field: str,
) -> None:
    admin = await staff_token(stack, tenant)
    base: dict[str, Any] = {}
    if operation == RECORD:
        base = {
            "orderId": "o-bad",
            "customerId": str(uuid.uuid4()),
            "amountCents": 100,
            "currency": "EUR",
            "occurredAt": datetime.now(UTC).isoformat(),
            "idempotencyKey": "k-bad",
        }
    result = await devstack.graphql(stack, operation, {"input": {**base, **variables}}, token=admin)
    assert _error(result) == ("BAD_USER_INPUT", field)
