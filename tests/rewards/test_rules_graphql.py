"""Rules and tiers through the gateway: managing them, dry runs, Customer.tier, clear errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import customer_token, staff_token
from tests.support.waiting import eventually

RULE_FIELDS = """
  id version enabled default paidPoints paidCount
  current { name trigger priority reward { kind points offerId } caps { period count } }
"""
CREATE = f"""
mutation Create($input: RuleInput!) {{ createRule(input: $input) {{ {RULE_FIELDS} }} }}
"""
UPDATE = f"""
mutation Update($id: ID!, $input: RuleInput!) {{
  updateRule(id: $id, input: $input) {{ {RULE_FIELDS} }}
}}
"""
DISABLE = "mutation Disable($id: ID!) { disableRule(id: $id) { id enabled version } }"
RULE = """
query Rule($id: ID!) {
  rule(id: $id) { id version versions { version name reward { points } createdBy } }
}
"""
RULES = """
query Rules { rules(first: 50) { edges { node { id default current { trigger } } } } }
"""
DRY_RUN = """
query DryRun($input: RuleInput, $ruleId: ID, $from: DateTime!, $to: DateTime!) {
  dryRunRule(input: $input, ruleId: $ruleId, from: $from, to: $to) {
    events matched payouts points topCustomers { customerId points }
  }
}
"""
PAYOUTS = """
query Payouts($ruleId: ID!) {
  rulePayouts(ruleId: $ruleId, first: 5) {
    edges { node { customerId points version } } pageInfo { hasNextPage }
  }
}
"""
DEFINE_TIER = """
mutation Define($input: TierInput!) { defineTier(input: $input) { id name level multiplier } }
"""
REMOVE_TIER = "mutation Remove($id: ID!) { removeTier(id: $id) { id } }"
TIERED = """
query Tiered($id: ID!) {
  customer(id: $id) {
    rewards { balance }
    tier { name since tier { benefits } progress { nextTier { name } current threshold } }
  }
}
"""

REVIEWS = {
    "name": "Reviews",
    "trigger": "engagement.interaction.recorded.v1",
    "conditions": {"interactionKinds": ["review"], "sentimentMin": 0.3},
    "reward": {"kind": "POINTS", "points": 50},
    "caps": [{"period": "DAY", "count": 1}],
}


@pytest.fixture(scope="module")
def tenant(stack: devstack.Stack) -> str:
    return make_tenant(stack)


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    [error] = result["errors"]
    return error["extensions"]["code"], error["extensions"].get("field")


async def _register(stack: devstack.Stack, tenant: str, points: int = 100) -> str:
    admin = await staff_token(stack, tenant)
    registered = await devstack.graphql(stack, REGISTER, {"input": {"name": "Ada"}}, token=admin)
    assert "errors" not in registered, registered
    customer_id: str = registered["data"]["registerCustomer"]["id"]

    async def seen() -> Any:
        result = await devstack.graphql(stack, TIERED, {"id": customer_id}, token=admin)
        return result["data"]["customer"]["rewards"]

    await eventually(seen, lambda r: r is not None and r["balance"] == points, timeout=20)
    return customer_id


async def test_a_marketer_creates_updates_and_disables_a_rule_with_versions(
    stack: devstack.Stack, tenant: str
) -> None:
    marketer = await staff_token(stack, tenant, "marketer")
    created = await devstack.graphql(stack, CREATE, {"input": REVIEWS}, token=marketer)
    assert "errors" not in created, created
    rule = created["data"]["createRule"]
    assert rule["version"] == 1 and rule["enabled"] and not rule["default"]
    assert rule["current"]["caps"] == [{"period": "DAY", "count": 1}]

    changed = {**REVIEWS, "reward": {"kind": "POINTS", "points": 75}}
    updated = await devstack.graphql(
        stack, UPDATE, {"id": rule["id"], "input": changed}, token=marketer
    )
    assert updated["data"]["updateRule"]["version"] == 2
    read = await devstack.graphql(stack, RULE, {"id": rule["id"]}, token=marketer)
    versions = read["data"]["rule"]["versions"]
    assert [(v["version"], v["reward"]["points"]) for v in versions] == [(2, 75), (1, 50)]
    assert all(v["createdBy"].startswith("staff:") for v in versions)

    disabled = await devstack.graphql(stack, DISABLE, {"id": rule["id"]}, token=marketer)
    assert disabled["data"]["disableRule"] == {"id": rule["id"], "enabled": False, "version": 2}

    listed = await devstack.graphql(stack, RULES, {}, token=marketer)
    nodes = [e["node"] for e in listed["data"]["rules"]["edges"]]
    assert rule["id"] in [n["id"] for n in nodes]


async def test_the_sign_up_rule_pays_registrations_and_lists_its_payouts(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    customer_id = await _register(stack, tenant)
    listed = await devstack.graphql(stack, RULES, {}, token=admin)
    [signup] = [e["node"] for e in listed["data"]["rules"]["edges"] if e["node"]["default"]]
    assert signup["current"]["trigger"] == "identity.customer.registered.v1"
    paid = await devstack.graphql(stack, PAYOUTS, {"ruleId": signup["id"]}, token=admin)
    nodes = [e["node"] for e in paid["data"]["rulePayouts"]["edges"]]
    assert {"customerId": customer_id, "points": 100, "version": 1} in nodes


async def test_a_dry_run_over_registrations_pays_nothing(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    customer_id = await _register(stack, tenant)
    draft = {
        "name": "Double welcome",
        "trigger": "identity.customer.registered.v1",
        "reward": {"kind": "POINTS", "points": 10},
    }
    now = datetime.now(UTC)
    span = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(minutes=1)).isoformat(),
    }
    result = await devstack.graphql(stack, DRY_RUN, {"input": draft, **span}, token=admin)
    assert "errors" not in result, result
    run = result["data"]["dryRunRule"]
    assert run["events"] >= 1 and run["payouts"] == run["matched"] == run["events"]
    assert run["points"] == 10 * run["payouts"]
    assert {"customerId": customer_id, "points": 10} in run["topCustomers"]
    seen = await devstack.graphql(stack, TIERED, {"id": customer_id}, token=admin)
    assert seen["data"]["customer"]["rewards"]["balance"] == 100


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": "engagement.nothing.happened.v1"}, "input.trigger"),
        (
            {"startsAt": "2026-12-02T00:00:00Z", "endsAt": "2026-12-01T00:00:00Z"},
            "input.endsAt",
        ),
        ({"reward": {"kind": "POINTS", "points": -5}}, "input.reward.points"),
        ({"reward": {"kind": "COUPON"}}, "input.reward.offerId"),
        ({"caps": [{"period": "DAY", "count": 0}]}, "input.caps.0.count"),
        ({"conditions": {"tierIds": ["not-an-id"]}}, "input.conditions.tierIds.0"),
        (
            {"trigger": "engagement.poll.voted.v1", "conditions": {"channels": ["x"]}},
            "input.conditions.channels",
        ),
    ],
)
async def test_bad_rules_get_coded_errors_naming_the_field_and_write_nothing(
    stack: devstack.Stack, tenant: str, change: dict[str, Any], field: str
) -> None:
    admin = await staff_token(stack, tenant)
    before = await devstack.graphql(stack, RULES, {}, token=admin)
    result = await devstack.graphql(stack, CREATE, {"input": {**REVIEWS, **change}}, token=admin)
    assert _error(result) == ("BAD_USER_INPUT", field)
    after = await devstack.graphql(stack, RULES, {}, token=admin)
    assert after == before


async def test_unknown_rules_and_reversed_ranges_are_refused(
    stack: devstack.Stack, tenant: str
) -> None:
    admin = await staff_token(stack, tenant)
    missing = await devstack.graphql(
        stack, UPDATE, {"id": str(uuid.uuid4()), "input": REVIEWS}, token=admin
    )
    assert _error(missing) == ("NOT_FOUND", "id")
    now = datetime.now(UTC).isoformat()
    backwards = await devstack.graphql(
        stack, DRY_RUN, {"input": REVIEWS, "from": now, "to": "2020-01-01T00:00:00Z"}, token=admin
    )
    assert _error(backwards) == ("BAD_USER_INPUT", "to")


async def test_a_customer_token_reads_its_tier_but_not_the_rules(
    stack: devstack.Stack, tenant: str
) -> None:
    tiered = make_tenant(stack)
    admin = await staff_token(stack, tiered)
    for name, level, threshold in (("Bronze", 1, 50), ("Silver", 2, 1000)):
        tier = {
            "name": name,
            "level": level,
            "basis": "POINTS",
            "threshold": threshold,
            "windowDays": 30,
            "multiplier": 1.5,
            "benefits": [f"{name} lounge"],
        }
        defined = await devstack.graphql(stack, DEFINE_TIER, {"input": tier}, token=admin)
        assert "errors" not in defined, defined
    again = await devstack.graphql(
        stack, DEFINE_TIER, {"input": {**tier, "name": "Other"}}, token=admin
    )
    assert _error(again) == ("CONFLICT", "input.level")
    gone = await devstack.graphql(stack, REMOVE_TIER, {"id": str(uuid.uuid4())}, token=admin)
    assert _error(gone) == ("NOT_FOUND", "id")

    customer_id = await _register(stack, tiered)
    token = await customer_token(stack, tiered, customer_id)
    seen = await devstack.graphql(stack, TIERED, {"id": customer_id}, token=token)
    assert "errors" not in seen, seen
    standing = seen["data"]["customer"]["tier"]
    assert standing["name"] == "Bronze" and standing["since"]
    assert standing["tier"] == {"benefits": ["Bronze lounge"]}
    assert standing["progress"] == {
        "nextTier": {"name": "Silver"},
        "current": 100,
        "threshold": 1000,
    }

    refused = await devstack.graphql(stack, RULES, {}, token=token)
    assert _error(refused) == ("FORBIDDEN", None)
