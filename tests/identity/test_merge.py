"""Merging duplicates and undoing it: survivorship, moved data, events, and the round trip."""

from __future__ import annotations

from typing import Any

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.identity.test_customer_graph import (
    CONSENT,
    LINK,
    RECORD_PROFILE,
    REGISTER,
    _error,
    _ok,
    _outbox,
)
from tests.support.auth import staff_token

MERGE = """
mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { id survivorId mergedId } }
"""
UNMERGE = """
mutation($input: UnmergeCustomersInput!) {
  unmergeCustomers(input: $input) { id unmergedAt unmergeReason }
}
"""
VIEW = """
query($id: ID!) {
  customer(id: $id) {
    name givenName locale country preferences mergedIntoId
    contactPoints { value } socialProfiles { handle }
    consents { purpose granted }
    merges { id survivorId mergedId unmergedAt }
  }
}
"""
LIST = "{ customers(first: 10) { edges { node { name } } } }"
CHANNEL_ID = "UC_x5XG1OV2P6uZZ5FSM9Ttw"  # a YouTube channel id, as the Data API gives it


def _view(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        **customer,
        "contactPoints": sorted(p["value"] for p in customer["contactPoints"]),
        "consents": {c["purpose"]: c["granted"] for c in customer["consents"]},
        "merges": len(customer["merges"]),
    }


async def _read(stack: devstack.Stack, customer: str, token: str) -> dict[str, Any]:
    return _view((await _ok(stack, VIEW, {"id": customer}, token))["customer"])


async def test_merge_and_unmerge_round_trip(stack: devstack.Stack) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    survivor = (
        await _ok(
            stack,
            REGISTER,
            {
                "input": {
                    "name": "Katherine Johnson",
                    "email": "kj@example.com",
                    "locale": "en-US",
                    "preferences": {"newsletter": "weekly"},
                }
            },
            admin,
        )
    )["registerCustomer"]["id"]
    duplicate = (
        await _ok(
            stack,
            REGISTER,
            {
                "input": {
                    "name": "Kathy Johnson",
                    "givenName": "Katherine",
                    "phone": "+1 757 555 0101",
                    "locale": "fr-FR",
                    "country": "US",
                    "preferences": {"newsletter": "never", "channel": "sms"},
                }
            },
            admin,
        )
    )["registerCustomer"]["id"]
    profile = (
        await _ok(
            stack,
            RECORD_PROFILE,
            {
                "input": {
                    "channel": "YOUTUBE",
                    "platformUserId": "UC_x5XG1OV2P6uZZ5FSM9Ttw",
                    "handle": "kathyj",
                }
            },
            admin,
        )
    )["recordSocialProfile"]["id"]
    await _ok(
        stack,
        LINK,
        {
            "input": {
                "profileId": profile,
                "customerId": duplicate,
                "evidence": "CUSTOMER_CONFIRMED",
            }
        },
        admin,
    )
    await _ok(
        stack,
        CONSENT,
        {
            "input": {
                "customerId": duplicate,
                "purpose": "MARKETING",
                "granted": True,
                "source": "checkout",
                "policyVersion": "v3",
            }
        },
        admin,
    )
    before = {
        c: _view((await _ok(stack, VIEW, {"id": c}, admin))["customer"])
        for c in (survivor, duplicate)
    }

    merge = (
        await _ok(
            stack,
            MERGE,
            {"input": {"survivorId": survivor, "mergedId": duplicate, "reason": "same person"}},
            admin,
        )
    )["mergeCustomers"]
    merged = await _read(stack, survivor, admin)
    assert merged["name"] == "Katherine Johnson"  # the survivor keeps what it has
    assert merged["locale"] == "en-US"
    assert merged["givenName"] == "Katherine"  # and takes what it lacks
    assert merged["country"] == "US"
    assert merged["preferences"] == {"newsletter": "weekly", "channel": "sms"}
    assert merged["contactPoints"] == ["+17575550101", "kj@example.com"]
    assert merged["socialProfiles"] == [{"handle": "kathyj"}]
    assert merged["consents"]["MARKETING"] is True
    gone = (await _ok(stack, VIEW, {"id": duplicate}, admin))["customer"]
    assert gone["mergedIntoId"] == survivor
    assert gone["contactPoints"] == [] and gone["socialProfiles"] == []
    names = [e["node"]["name"] for e in (await _ok(stack, LIST, {}, admin))["customers"]["edges"]]
    assert names == ["Katherine Johnson"]
    assert await _outbox(stack, "identity.customer.merged.v1", survivor) == 1

    again = await _error(
        stack,
        MERGE,
        {"input": {"survivorId": survivor, "mergedId": duplicate, "reason": "again"}},
        admin,
    )
    assert (again["code"], again["field"]) == ("CONFLICT", "input.mergedId")

    undo = {"input": {"mergeId": merge["id"], "reason": "not the same"}}
    unmerged = (await _ok(stack, UNMERGE, undo, admin))["unmergeCustomers"]
    assert unmerged["unmergedAt"] is not None and unmerged["unmergeReason"] == "not the same"
    after = {
        c: _view((await _ok(stack, VIEW, {"id": c}, admin))["customer"])
        for c in (survivor, duplicate)
    }
    for customer in (survivor, duplicate):
        assert after[customer] == {**before[customer], "merges": 1}
    assert await _outbox(stack, "identity.customer.unmerged.v1", survivor) == 1
    undone = await _error(stack, UNMERGE, {"input": {"mergeId": merge["id"], "reason": "x"}}, admin)
    assert undone["code"] == "CONFLICT"


async def test_a_customer_is_not_merged_into_itself(stack: devstack.Stack) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    me = (await _ok(stack, REGISTER, {"input": {"name": "Solo"}}, admin))["registerCustomer"]["id"]
    error = await _error(
        stack, MERGE, {"input": {"survivorId": me, "mergedId": me, "reason": "oops"}}, admin
    )
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "input.mergedId")
