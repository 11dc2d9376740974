"""Offers, coupons and the catalogue through the gateway: who may do what, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import client_token, customer_token, staff_token
from tests.support.waiting import eventually

CREATE_OFFER = """
mutation($input: CreateOfferInput!) {
  createOffer(input: $input) { id status kind percentOff audience { segments } }
}
"""
PUBLISH = "mutation($id: ID!) { publishOffer(offerId: $id) { id status publishedAt } }"
END = "mutation($id: ID!) { endOffer(offerId: $id) { id status } }"
OFFERS = "query { offers(first: 100) { edges { node { id status } } } }"
OFFER = "query($id: ID!) { offer(id: $id) { id name } }"
CONSENT = """
mutation($input: RecordConsentInput!) { recordConsent(input: $input) { purpose granted } }
"""
ELIGIBLE = "query($id: ID!) { customer(id: $id) { eligibleOffers { id name } } }"
COUPONS = """
query($id: ID!, $status: CouponStatus) {
  customer(id: $id) {
    coupons(status: $status, first: 10) { edges { node { code status offer { name } } } }
  }
}
"""
CLAIM = """
mutation($input: ClaimOfferInput!) { claimOffer(input: $input) { id code status offerId } }
"""
ISSUE = "mutation($input: IssueCouponInput!) { issueCoupon(input: $input) { code customerId } }"
REDEEM = """
mutation($input: RedeemCouponInput!) {
  redeemCoupon(input: $input) { code status orderId redeemedAt }
}
"""
CREATE_ITEM = """
mutation($input: CreateCatalogueItemInput!) {
  createCatalogueItem(input: $input) { id name pointsCost stock available }
}
"""
UPDATE_ITEM = """
mutation($input: UpdateCatalogueItemInput!) {
  updateCatalogueItem(input: $input) { id active available }
}
"""
CATALOGUE = "query { catalogue(first: 50) { edges { node { id name available } } } }"
REDEEM_ITEM = """
mutation($input: RedeemCatalogueItemInput!) {
  redeemCatalogueItem(input: $input) { points balance replayed item { redeemed } }
}
"""
BALANCE = "query($id: ID!) { customer(id: $id) { rewards { balance } } }"


@pytest.fixture(scope="module")
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


async def _ok(stack: devstack.Stack, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


async def _error(
    stack: devstack.Stack, query: str, variables: dict[str, Any], token: str
) -> tuple[str, str | None]:
    result = await devstack.graphql(stack, query, variables, token=token)
    [error] = result["errors"]
    return error["extensions"]["code"], error["extensions"].get("field")


async def _customer(stack: devstack.Stack, tenant: str, *, marketing: bool) -> str:
    """A registered customer with a rewards account (and marketing consent, if asked)."""
    admin = await staff_token(stack, tenant)
    registered = await _ok(stack, REGISTER, {"input": {"name": "Ada"}}, admin)
    customer_id: str = registered["registerCustomer"]["id"]
    await eventually(
        lambda: devstack.graphql(stack, BALANCE, {"id": customer_id}, token=admin),
        lambda r: (r.get("data") or {}).get("customer", {}).get("rewards") is not None,
        timeout=20,
    )
    if marketing:
        consent = {
            "customerId": customer_id,
            "purpose": "MARKETING",
            "granted": True,
            "source": "web",
            "policyVersion": "v1",
        }
        await _ok(stack, CONSENT, {"input": consent}, admin)
    return customer_id


async def _published(stack: devstack.Stack, tenant: str, **fields: Any) -> str:
    marketer = await staff_token(stack, tenant, "marketer")
    created = await _ok(
        stack,
        CREATE_OFFER,
        {"input": {"name": "Ten off", "kind": "PERCENTAGE", "percentOff": 10, **fields}},
        marketer,
    )
    offer_id: str = created["createOffer"]["id"]
    published = await _ok(stack, PUBLISH, {"id": offer_id}, marketer)
    assert published["publishOffer"]["status"] == "PUBLISHED"
    return offer_id


async def test_a_customer_claims_an_offer_and_a_partner_redeems_the_coupon_once(
    stack: devstack.Stack, tenant: str
) -> None:
    offer_id = await _published(stack, tenant, name="Winter ten")
    customer_id = await _customer(stack, tenant, marketing=True)
    own = await customer_token(stack, tenant, customer_id)
    shop = await client_token(stack, tenant, ["rewards:redeem"], kind="partner")

    eligible = await eventually(
        lambda: _ok(stack, ELIGIBLE, {"id": customer_id}, own),
        lambda d: any(o["id"] == offer_id for o in d["customer"]["eligibleOffers"]),
        timeout=20,
    )
    claimed = await _ok(
        stack, CLAIM, {"input": {"offerId": offer_id, "customerId": customer_id}}, own
    )
    coupon = claimed["claimOffer"]
    coupons = await _ok(stack, COUPONS, {"id": customer_id, "status": "AVAILABLE"}, own)
    # The customer cannot redeem at a checkout themselves; the shop can, once.
    forbidden = await _error(
        stack, REDEEM, {"input": {"code": coupon["code"], "orderId": "o-1"}}, own
    )
    redeemed = await _ok(stack, REDEEM, {"input": {"code": coupon["code"], "orderId": "o-1"}}, shop)
    again = await _error(stack, REDEEM, {"input": {"code": coupon["code"], "orderId": "o-2"}}, shop)
    after = await _ok(stack, COUPONS, {"id": customer_id, "status": "REDEEMED"}, own)

    assert any(o["name"] == "Winter ten" for o in eligible["customer"]["eligibleOffers"])
    assert coupon["status"] == "AVAILABLE"
    assert [e["node"]["code"] for e in coupons["customer"]["coupons"]["edges"]] == [coupon["code"]]
    assert coupons["customer"]["coupons"]["edges"][0]["node"]["offer"]["name"] == "Winter ten"
    assert forbidden[0] == "FORBIDDEN"
    assert redeemed["redeemCoupon"]["status"] == "REDEEMED"
    assert redeemed["redeemCoupon"]["orderId"] == "o-1"
    assert again == ("CONFLICT", "input.code")
    assert len(after["customer"]["coupons"]["edges"]) == 1


async def test_a_customer_without_marketing_consent_is_offered_nothing(
    stack: devstack.Stack, tenant: str
) -> None:
    offer_id = await _published(stack, tenant)
    customer_id = await _customer(stack, tenant, marketing=False)
    own = await customer_token(stack, tenant, customer_id)
    admin = await staff_token(stack, tenant)

    eligible = await _ok(stack, ELIGIBLE, {"id": customer_id}, own)
    claim = await _error(
        stack, CLAIM, {"input": {"offerId": offer_id, "customerId": customer_id}}, own
    )
    issue = await _error(
        stack, ISSUE, {"input": {"offerId": offer_id, "customerId": customer_id}}, admin
    )
    coupons = await _ok(stack, COUPONS, {"id": customer_id, "status": None}, admin)

    assert eligible["customer"]["eligibleOffers"] == []
    assert claim == ("BAD_USER_INPUT", "customerId")
    assert issue == ("BAD_USER_INPUT", "customerId")
    assert coupons["customer"]["coupons"]["edges"] == []


async def test_bad_offer_input_is_refused_with_the_field_and_writes_nothing(
    stack: devstack.Stack, tenant: str
) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    before = await _ok(stack, OFFERS, {}, marketer)
    base = {"name": "Bad", "kind": "PERCENTAGE", "percentOff": 10}

    too_much = await _error(stack, CREATE_OFFER, {"input": {**base, "percentOff": 150}}, marketer)
    backwards = await _error(
        stack,
        CREATE_OFFER,
        {
            "input": {
                **base,
                "startsAt": "2026-12-10T00:00:00Z",
                "endsAt": "2026-12-09T00:00:00Z",
            }
        },
        marketer,
    )
    unknown = await _error(
        stack, REDEEM, {"input": {"code": "ZZZZ-ZZZZ-ZZZZ", "orderId": "o"}}, marketer
    )
    after = await _ok(stack, OFFERS, {}, marketer)

    assert too_much == ("BAD_USER_INPUT", "input.percentOff")
    assert backwards == ("BAD_USER_INPUT", "input.endsAt")
    # The marketer lacks rewards:redeem: refused before the code is even looked up.
    assert unknown[0] == "FORBIDDEN"
    admin = await staff_token(stack, tenant)
    assert await _error(
        stack, REDEEM, {"input": {"code": "ZZZZ-ZZZZ-ZZZZ", "orderId": "o"}}, admin
    ) == ("NOT_FOUND", "input.code")
    assert after == before


async def test_another_tenant_can_neither_see_nor_redeem_a_coupon(
    stack: devstack.Stack, tenant: str
) -> None:
    offer_id = await _published(stack, tenant)
    customer_id = await _customer(stack, tenant, marketing=True)
    admin = await staff_token(stack, tenant)
    [coupon] = (
        await _ok(stack, ISSUE, {"input": {"offerId": offer_id, "customerId": customer_id}}, admin)
    )["issueCoupon"]
    other = make_tenant(stack)
    intruder = await staff_token(stack, other)

    redeem = await _error(
        stack, REDEEM, {"input": {"code": coupon["code"], "orderId": "o-1"}}, intruder
    )
    seen = await _ok(stack, OFFER, {"id": offer_id}, intruder)
    coupons = await devstack.graphql(stack, COUPONS, {"id": customer_id}, token=intruder)

    assert redeem == ("NOT_FOUND", "input.code")
    assert seen["offer"] is None
    assert "code" not in str(coupons.get("data"))
    # And the coupon is still there for its own tenant.
    assert (await _ok(stack, REDEEM, {"input": {"code": coupon["code"], "orderId": "o-1"}}, admin))[
        "redeemCoupon"
    ]["status"] == "REDEEMED"


async def test_a_customer_buys_a_catalogue_item_with_points_once_per_key(
    stack: devstack.Stack, tenant: str
) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    item = (
        await _ok(
            stack,
            CREATE_ITEM,
            {"input": {"name": "Tote bag", "pointsCost": 30, "stock": 5}},
            marketer,
        )
    )["createCatalogueItem"]
    customer_id = await _customer(stack, tenant, marketing=False)
    own = await customer_token(stack, tenant, customer_id)
    redeem = {"itemId": item["id"], "idempotencyKey": "bag-1"}

    catalogue = await _ok(stack, CATALOGUE, {}, own)
    first = await _ok(stack, REDEEM_ITEM, {"input": redeem}, own)
    again = await _ok(stack, REDEEM_ITEM, {"input": redeem}, own)
    bad = await _error(stack, CREATE_ITEM, {"input": {"name": "Free", "pointsCost": 0}}, marketer)
    await _ok(stack, UPDATE_ITEM, {"input": {"id": item["id"], "active": False}}, marketer)
    hidden = await _ok(stack, CATALOGUE, {}, own)
    closed = await _error(stack, REDEEM_ITEM, {"input": {**redeem, "idempotencyKey": "bag-2"}}, own)

    assert item["id"] in [e["node"]["id"] for e in catalogue["catalogue"]["edges"]]
    assert first["redeemCatalogueItem"] == {
        "points": 30,
        "balance": 70,
        "replayed": False,
        "item": {"redeemed": 1},
    }
    assert again["redeemCatalogueItem"]["replayed"] is True
    assert again["redeemCatalogueItem"]["balance"] == 70
    assert bad == ("BAD_USER_INPUT", "input.pointsCost")
    assert item["id"] not in [e["node"]["id"] for e in hidden["catalogue"]["edges"]]
    assert closed == ("BAD_USER_INPUT", "input.itemId")
