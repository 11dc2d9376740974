"""The slice that uses everything: registerCustomer through the gateway, the event through
the outbox and broker, rewards' welcome points, and the customer graph showing them."""

from __future__ import annotations

import uuid
from typing import Any

from crm_shared import devstack
from tests.e2e.conftest import CUSTOMER_360, REGISTER
from tests.support.auth import staff_token
from tests.support.waiting import eventually


async def test_a_registered_customer_gets_welcome_points_visible_through_the_gateway(
    stack: devstack.Stack, tenant_id: str
) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    registered = await devstack.graphql(
        stack,
        REGISTER,
        {"input": {"name": "Ada Lovelace", "email": email}},
        token=await staff_token(stack, tenant_id),
    )
    assert "errors" not in registered, registered
    customer_id = registered["data"]["registerCustomer"]["id"]

    async def customer() -> dict[str, Any]:
        result = await devstack.graphql(
            stack, CUSTOMER_360, {"id": customer_id}, token=await staff_token(stack, tenant_id)
        )
        assert "errors" not in result, result
        found: dict[str, Any] = result["data"]["customer"]
        return found

    seen = await eventually(customer, lambda c: c["rewards"] is not None, timeout=20)
    assert seen == {
        "id": customer_id,
        "name": "Ada Lovelace",
        "email": email,
        "rewards": {"balance": 100},
        "interactionCount": 0,
    }


async def test_another_tenant_does_not_see_the_customer(
    stack: devstack.Stack, tenant_id: str, other_tenant_id: str
) -> None:
    registered = await devstack.graphql(
        stack,
        REGISTER,
        {"input": {"name": "Grace", "email": None}},
        token=await staff_token(stack, tenant_id),
    )
    customer_id = registered["data"]["registerCustomer"]["id"]
    result = await devstack.graphql(
        stack, CUSTOMER_360, {"id": customer_id}, token=await staff_token(stack, other_tenant_id)
    )
    assert "errors" not in result, result
    assert result["data"] == {"customer": None}
