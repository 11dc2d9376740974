"""Rewards' own endpoints in-process (tokens of the suite's own signer): ``POST /purchases``
and ``/refunds``, and the purchase, referral and value fields of the subgraph."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from crm_shared import devstack
from crm_shared.app import create_service_app
from crm_shared.auth import TokenVerifier
from crm_shared.db import Database
from rewards.purchases.router import purchases_router
from rewards.schema import schema
from tests.rewards.conftest import ledger_settings, open_customer
from tests.rewards.test_referrals import code_of, register
from tests.support.signer import TestSigner

ADMIN_SCOPES = "purchases:write rewards:read rewards:manage fraud:review"


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture
async def client(isolated: devstack.Stack, signer: TestSigner) -> AsyncIterator[httpx.AsyncClient]:
    """Rewards' app without its lifespan (no consumer, no relay): requests only."""

    async def jwks() -> Mapping[str, Any]:
        return signer.jwks()

    settings = ledger_settings(isolated)
    app = create_service_app(
        settings=settings,
        schema=schema,
        handlers={},
        title="rewards",
        verifier=TokenVerifier(jwks),
        routers=[purchases_router(settings)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rewards") as http:
        yield http
    await app.state.db.dispose()


def token(signer: TestSigner, tenant: uuid.UUID, scope: str = ADMIN_SCOPES) -> str:
    return signer.token(tid=str(tenant), typ="client", scope=scope)


def purchase(customer: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "order_id": f"o-{uuid.uuid4().hex[:8]}",
        "customer_id": str(customer),
        "amount_cents": 4_000,
        "currency": "EUR",
        "occurred_at": datetime.now(UTC).isoformat(),
        **overrides,
    }


async def post(
    http: httpx.AsyncClient, path: str, body: Any, bearer: str | None, key: str | None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await http.post(path, json=body, headers=headers)


async def graphql(
    http: httpx.AsyncClient, bearer: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {bearer}"},
    )
    result: dict[str, Any] = response.json()
    return result


async def test_the_same_key_answers_the_first_response_and_another_body_is_409(
    client: httpx.AsyncClient, signer: TestSigner, ledger_db: Database
) -> None:
    tenant, customer = await open_customer(ledger_db)
    bearer = token(signer, tenant)
    body = purchase(customer)

    first = await post(client, "/purchases", body, bearer, "order-1")
    again = await post(client, "/purchases", body, bearer, "order-1")
    changed = await post(client, "/purchases", {**body, "amount_cents": 1}, bearer, "order-1")

    assert first.status_code == 201, first.text
    assert first.json()["amount_cents"] == 4_000
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "CONFLICT"
    assert changed.json()["error"]["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("body", "key", "status", "field"),
    [
        ({"amount_cents": -5}, "k", 422, "amount_cents"),
        ({"currency": "euros"}, "k", 422, "currency"),
        ({"occurred_at": "yesterday"}, "k", 422, "occurred_at"),
        ({}, None, 422, "Idempotency-Key"),
        ({"customer_id": str(uuid.uuid4())}, "k", 404, "customer_id"),
    ],
)
async def test_bad_requests_name_the_field_and_write_nothing(
    client: httpx.AsyncClient,
    signer: TestSigner,
    ledger_db: Database,
    body: dict[str, Any],
    key: str | None,
    status: int,
    field: str,
) -> None:
    tenant, customer = await open_customer(ledger_db)
    bearer = token(signer, tenant)

    refused = await post(client, "/purchases", purchase(customer, **body), bearer, key)
    listed = await graphql(
        client,
        bearer,
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Customer { purchases(first: 5) { edges { node { id } } } } } }",
        {"r": [{"__typename": "Customer", "id": str(customer)}]},
    )

    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["field"] == field
    assert listed["data"]["_entities"][0]["purchases"]["edges"] == []


async def test_partner_endpoints_need_a_token_with_purchases_write(
    client: httpx.AsyncClient, signer: TestSigner, ledger_db: Database
) -> None:
    tenant, customer = await open_customer(ledger_db)

    anonymous = await post(client, "/purchases", purchase(customer), None, "k")
    reader = await post(client, "/refunds", {}, token(signer, tenant, scope="rewards:read"), "k")
    not_json = await client.post(
        "/purchases",
        content=b"{",
        headers={"authorization": f"Bearer {token(signer, tenant)}", "Idempotency-Key": "k"},
    )

    assert anonymous.status_code == 401
    assert reader.status_code == 403
    assert not_json.status_code == 422 and not_json.json()["error"]["field"] == "body"


CUSTOMER = """
query($r: [_Any!]!) {
  _entities(representations: $r) {
    ... on Customer {
      referralCode { code link }
      referrals(first: 5) { edges { node { referredId status } } }
      purchases(first: 5) { edges { node { orderId amountCents refundedCents kind } } }
      value { ownRevenue referralRevenue total currency }
    }
  }
}
"""


async def test_the_graph_shows_code_referrals_purchases_and_value(
    client: httpx.AsyncClient, signer: TestSigner, ledger_db: Database
) -> None:
    tenant = uuid.uuid4()
    referrer = await register(ledger_db, tenant)
    referred = await register(ledger_db, tenant, code=await code_of(ledger_db, tenant, referrer))
    bearer = token(signer, tenant)
    body = purchase(referred, amount_cents=2_000)
    await post(client, "/purchases", body, bearer, "p-1")
    refunded = await post(
        client,
        "/refunds",
        {"order_id": body["order_id"], "amount_cents": 500, "occurred_at": body["occurred_at"]},
        bearer,
        "r-1",
    )
    assert refunded.status_code == 201, refunded.text

    found = await graphql(
        client,
        bearer,
        CUSTOMER,
        {"r": [{"__typename": "Customer", "id": str(c)} for c in (referrer, referred)]},
    )

    assert "errors" not in found, found
    mine, theirs = found["data"]["_entities"]
    code = await code_of(ledger_db, tenant, referrer)
    assert mine["referralCode"] == {
        "code": code,
        "link": f"https://refer.social-crm.local/r/{code}",
    }
    assert mine["referrals"]["edges"] == [
        {"node": {"referredId": str(referred), "status": "REWARDED"}}
    ]
    assert mine["value"] == {
        "ownRevenue": 0,
        "referralRevenue": 1_500,
        "total": 1_500,
        "currency": "EUR",
    }
    assert theirs["purchases"]["edges"] == [
        {
            "node": {
                "orderId": body["order_id"],
                "amountCents": 2_000,
                "refundedCents": 500,
                "kind": "PURCHASE",
            }
        }
    ]
    assert theirs["value"]["ownRevenue"] == 1_500


async def test_staff_change_the_program_and_review_held_referrals(
    client: httpx.AsyncClient, signer: TestSigner, ledger_db: Database
) -> None:
    tenant = uuid.uuid4()
    bearer = token(signer, tenant)
    updated = await graphql(
        client,
        bearer,
        "mutation($i: UpdateReferralProgramInput!) { updateReferralProgram(input: $i) "
        "{ referrerPoints qualifyingKind velocityLimit } }",
        {"i": {"referrerPoints": 2000, "qualifyingKind": "SUBSCRIPTION", "velocityLimit": 1}},
    )
    bad = await graphql(
        client,
        bearer,
        "mutation($i: UpdateReferralProgramInput!) { updateReferralProgram(input: $i) "
        "{ referrerPoints } }",
        {"i": {"milestones": [{"id": "Three!", "referrals": 3, "offerId": str(uuid.uuid4())}]}},
    )
    assert updated["data"]["updateReferralProgram"] == {
        "referrerPoints": 2000,
        "qualifyingKind": "SUBSCRIPTION",
        "velocityLimit": 1,
    }
    assert bad["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "input.milestones.0.id",
    }

    referrer = await register(ledger_db, tenant)
    code = await code_of(ledger_db, tenant, referrer)
    first, second = [await register(ledger_db, tenant, code=code) for _ in range(2)]
    for n, customer in enumerate((first, second)):
        recorded = await graphql(
            client,
            bearer,
            "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { replayed } }",
            {
                "i": {
                    "orderId": f"o-{n}",
                    "customerId": str(customer),
                    "amountCents": 1_000,
                    "currency": "EUR",
                    "occurredAt": datetime.now(UTC).isoformat(),
                    "kind": "SUBSCRIPTION",
                    "idempotencyKey": f"k-{n}",
                }
            },
        )
        assert recorded["data"]["recordPurchase"]["replayed"] is False

    held = await graphql(
        client, bearer, "{ heldReferrals(first: 5) { edges { node { id holdReasons } } } }"
    )
    [node] = [e["node"] for e in held["data"]["heldReferrals"]["edges"]]
    assert node["holdReasons"] == ["VELOCITY"]
    no_scope = await graphql(
        client,
        token(signer, tenant, scope="rewards:read"),
        "{ heldReferrals(first: 5) { edges { node { id } } } }",
    )
    rejected = await graphql(
        client,
        bearer,
        "mutation($i: RejectReferralInput!) { rejectReferral(input: $i) "
        "{ clawedBackPoints referral { status } } }",
        {"i": {"referralId": node["id"], "reason": "a referral farm"}},
    )
    again = await graphql(
        client,
        bearer,
        "mutation($i: RejectReferralInput!) { rejectReferral(input: $i) { clawedBackPoints } }",
        {"i": {"referralId": node["id"], "reason": "twice"}},
    )

    assert no_scope["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert rejected["data"]["rejectReferral"] == {
        "clawedBackPoints": 0,
        "referral": {"status": "REJECTED"},
    }
    assert again["errors"][0]["extensions"] == {"code": "CONFLICT", "field": "input.referralId"}
