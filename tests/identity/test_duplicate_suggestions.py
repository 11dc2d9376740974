"""Duplicate-customer suggestions through the gateway: two "Maria Souza" records whose
e-mail addresses reach one mailbox are suggested with evidence and a score; staff dismiss a
suggestion (it stays dismissed) or merge the pair (it leaves the list); nothing is merged
automatically; a shared name alone is not enough."""

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
SUGGESTIONS = """
query($status: DuplicateSuggestionStatus, $customer: ID) {
  duplicateSuggestions(first: 10, status: $status, customerId: $customer) {
    edges { node {
      id score status dismissReason
      evidence { kind detail weight }
      customer { id name mergedIntoId } candidate { id name mergedIntoId }
    } }
  }
}
"""
DISMISS = """
mutation($input: DismissDuplicateSuggestionInput!) {
  dismissDuplicateSuggestion(input: $input) { id status dismissedBy dismissReason }
}
"""
MERGE = "mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { id } }"
UPDATE = "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { id } }"


async def _ok(stack: devstack.Stack, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


@pytest.fixture
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


async def test_look_alike_customers_are_suggested_then_dismissed_or_merged_by_staff(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)

    async def register(**person: Any) -> str:
        return str((await _ok(stack, REGISTER, {"input": person}, admin))["registerCustomer"]["id"])

    async def suggestions(status: str = "OPEN") -> list[dict[str, Any]]:
        data = await _ok(stack, SUGGESTIONS, {"status": status}, admin)
        return [e["node"] for e in data["duplicateSuggestions"]["edges"]]

    first = await register(
        name="Maria Souza", email="maria.souza@gmail.com", birthDate="1990-04-02"
    )
    second = await register(name="María Souza", email="mariasouza+shop@gmail.com")
    await register(name="Maria Souza")  # the same name, nothing else: not suggested
    # Two other people sharing a name are not suggested either.
    await register(name="John Smith", email="john@one.example")
    await register(name="John Smith", email="john@two.example")

    [found] = await eventually(suggestions, lambda s: len(s) == 1, timeout=30)
    assert {found["customer"]["id"], found["candidate"]["id"]} == {first, second}
    kinds = {e["kind"] for e in found["evidence"]}
    assert kinds == {"SAME_MAILBOX", "SIMILAR_NAME"}
    mailbox = next(e for e in found["evidence"] if e["kind"] == "SAME_MAILBOX")
    assert "maria.souza@gmail.com" in mailbox["detail"]
    assert 0.6 < found["score"] <= 1.0
    # Nothing was merged.
    assert found["customer"]["mergedIntoId"] is None and found["candidate"]["mergedIntoId"] is None

    dismissed = await _ok(
        stack, DISMISS, {"input": {"id": found["id"], "reason": "twins, checked by phone"}}, admin
    )
    assert dismissed["dismissDuplicateSuggestion"]["status"] == "DISMISSED"
    assert dismissed["dismissDuplicateSuggestion"]["dismissedBy"].startswith("staff:")
    again = await devstack.graphql(
        stack, DISMISS, {"input": {"id": found["id"], "reason": "again"}}, token=admin
    )
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"
    # A later change to one of them does not bring the dismissed pair back.
    await _ok(stack, UPDATE, {"input": {"id": second, "gender": "female"}}, admin)
    third = await register(name="Maria Souza", email="m.a.r.i.a.souza@googlemail.com")
    open_now = await eventually(suggestions, lambda s: len(s) == 2, timeout=30)
    assert all(third in (s["customer"]["id"], s["candidate"]["id"]) for s in open_now)
    assert [s["id"] for s in await suggestions("DISMISSED")] == [found["id"]]

    await _ok(
        stack,
        MERGE,
        {"input": {"survivorId": first, "mergedId": third, "reason": "same person"}},
        admin,
    )
    assert await suggestions() == []  # the pairs with a merged-away record leave the list
