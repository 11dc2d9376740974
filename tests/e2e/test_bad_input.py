"""Bad input gets a clear error with a code and the field, never a 500, never a partial write."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import staff_token


async def _counts(stack: devstack.Stack, tenant_id: str) -> tuple[int, int]:
    conn = await asyncpg.connect(stack.database_url("identity"))
    try:
        customers = await conn.fetchval(
            "SELECT count(*) FROM identity.customers WHERE tenant_id = $1", uuid.UUID(tenant_id)
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE envelope->>'tenantid' = $1", tenant_id
        )
        return int(customers), int(events)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "payload,code,field",
    [
        ({"name": "", "email": None}, "BAD_USER_INPUT", "input.name"),
        ({"name": "   ", "email": None}, "BAD_USER_INPUT", "input.name"),
        ({"name": "x" * 201, "email": None}, "BAD_USER_INPUT", "input.name"),
        ({"name": "Ann", "email": "not-an-email"}, "BAD_USER_INPUT", "input.email"),
    ],
)
async def test_invalid_registration_is_refused_with_the_field_and_writes_nothing(
    stack: devstack.Stack, payload: dict[str, object], code: str, field: str
) -> None:
    tenant_id = make_tenant(stack)
    before = await _counts(stack, tenant_id)
    result = await devstack.graphql(
        stack, REGISTER, {"input": payload}, token=await staff_token(stack, tenant_id)
    )
    assert result["data"] is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["field"] == field
    assert await _counts(stack, tenant_id) == before


async def test_a_duplicate_email_is_a_conflict_and_the_first_customer_stays_alone(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    first = {"input": {"name": "Ann", "email": "ann@example.com"}}
    again = {"input": {"name": "Ann Again", "email": "ANN@example.com"}}
    assert "errors" not in await devstack.graphql(
        stack, REGISTER, first, token=await staff_token(stack, tenant_id)
    )
    after_first = await _counts(stack, tenant_id)
    result = await devstack.graphql(
        stack, REGISTER, again, token=await staff_token(stack, tenant_id)
    )
    [error] = result["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["field"] == "input.email"
    assert after_first[0] == 1
    assert await _counts(stack, tenant_id) == after_first


@pytest.mark.parametrize("service", ["gateway", "identity"])
async def test_a_request_without_a_token_is_unauthenticated(
    stack: devstack.Stack, service: str
) -> None:
    result = await devstack.graphql(stack, REGISTER, {"input": {"name": "Nobody"}}, service=service)
    [error] = result["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "query,variables,field",
    [
        ("query($id: ID!) { customer(id: $id) { id } }", {"id": "not-a-uuid"}, "id"),
        ("{ customers(first: 1000) { edges { cursor } } }", {}, "first"),
        ("{ customers(first: 0) { edges { cursor } } }", {}, "first"),
        ('{ customers(first: 5, after: "garbage") { edges { cursor } } }', {}, "after"),
    ],
)
async def test_bad_arguments_name_the_argument(
    stack: devstack.Stack, tenant_id: str, query: str, variables: dict[str, object], field: str
) -> None:
    result = await devstack.graphql(
        stack, query, variables, token=await staff_token(stack, tenant_id)
    )
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field


@pytest.mark.parametrize("service", ["gateway", *devstack.SUBGRAPHS])
@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{not json", "application/json"),
        (b'{"query": 42}', "application/json"),
        (b'{"query": "{ customers(first: 1) { nope } }"}', "application/json"),
        (b'{"query": "{ customers(first: "}', "application/json"),
        (b"query=1", "text/plain"),
    ],
)
async def test_malformed_requests_get_a_4xx_or_a_graphql_error_never_a_500(
    stack: devstack.Stack, tenant_id: str, service: str, body: bytes, content_type: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            stack.url(service, "/graphql"),
            content=body,
            headers={
                "content-type": content_type,
                "authorization": f"Bearer {await staff_token(stack, tenant_id)}",
            },
        )
    assert response.status_code < 500
    assert response.content, "an error has a body"
    if response.status_code == 200:
        assert response.json()["errors"]


RECORD = "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { __typename } }"
CUSTOMERS = "query($n: Int!) { customers(first: $n) { edges { node { id } } } }"


@pytest.mark.parametrize("service", ["gateway", "identity"])
async def test_values_a_scalar_refuses_are_bad_input_naming_the_variable(
    stack: devstack.Stack, service: str
) -> None:
    """A date of month 13 and an Int past 32 bits are the caller's mistakes, through the
    gateway and straight to the subgraph, never INTERNAL_SERVER_ERROR."""
    tenant_id = make_tenant(stack)
    token = await staff_token(stack, tenant_id)
    before = await _counts(stack, tenant_id)
    for query, variables, field in (
        (REGISTER, {"input": {"name": "Ann", "birthDate": "2020-13-45"}}, "input.birthDate"),
        (CUSTOMERS, {"n": 2**40}, "n"),
    ):
        result = await devstack.graphql(stack, query, variables, token=token, service=service)
        assert result.get("data") is None, result
        [error] = result["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (service, error)
        if service != "gateway" or "field" in error["extensions"]:
            assert error["extensions"]["field"] == field
    assert await _counts(stack, tenant_id) == before


@pytest.mark.parametrize("service", ["gateway", "engagement"])
async def test_a_time_that_is_not_a_time_is_bad_input(stack: devstack.Stack, service: str) -> None:
    tenant_id = make_tenant(stack)
    token = await staff_token(stack, tenant_id)
    interaction = {"channel": "x", "platformId": "p-1", "kind": "post", "createdAt": "yesterday"}
    result = await devstack.graphql(stack, RECORD, {"i": interaction}, token=token, service=service)
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error


async def test_a_nul_character_in_a_rest_body_is_bad_input_not_a_500(
    stack: devstack.Stack,
) -> None:
    from tests.support.auth import client_token

    tenant_id = make_tenant(stack)
    token = await client_token(stack, tenant_id, kind="partner", scopes=["customers:write"])
    before = await _counts(stack, tenant_id)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            stack.url("identity", "/partner/signups"),
            json={"name": "Nul\u0000Name", "email": "nul@example.com"},
            headers={"authorization": f"Bearer {token}", "idempotency-key": "nul-1"},
        )
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    assert await _counts(stack, tenant_id) == before
