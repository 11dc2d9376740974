"""``POST /partner/signups``: a partner registers a customer; the same Idempotency-Key and body
give the same customer, another body a 409, bad JSON a 422 naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import client_token
from tests.support.waiting import eventually


async def _post(
    stack: devstack.Stack, token: str, body: Any, key: str | None = "k"
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    if key is not None:
        headers["idempotency-key"] = key
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            stack.url("identity", "/partner/signups"), json=body, headers=headers
        )


async def _registered_events(stack: devstack.Stack, customer_id: str) -> int:
    conn = await asyncpg.connect(f"postgresql://postgres@{stack.pg_host}/{stack.database}")
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE type = $1 AND envelope->>'subject' = $2",
            "identity.customer.registered.v1",
            customer_id,
        )
    finally:
        await conn.close()
    return count


async def test_the_same_key_and_body_give_the_same_customer_once(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    token = await client_token(stack, tenant_id, ["customers:write"], kind="partner")
    key = str(uuid.uuid4())
    body = {"name": "Ann Partner", "email": f"{uuid.uuid4().hex[:10]}@example.com", "country": "DE"}
    first = await _post(stack, token, body, key)
    assert first.status_code == 201, first.text
    customer_id = first.json()["customer_id"]
    again = await _post(stack, token, dict(reversed(list(body.items()))), key)
    assert again.status_code == 200
    assert again.json() == {"customer_id": customer_id}
    assert again.headers["idempotent-replayed"] == "true"
    assert await eventually(lambda: _registered_events(stack, customer_id), lambda n: n >= 1) == 1

    other = await _post(stack, token, {**body, "name": "Someone Else"}, key)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "CONFLICT"
    assert other.json()["error"]["field"] == "Idempotency-Key"

    fresh = await _post(stack, token, {"name": "Bob"}, str(uuid.uuid4()))
    assert fresh.status_code == 201 and fresh.json()["customer_id"] != customer_id


async def test_bad_requests_name_what_is_wrong(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    token = await client_token(stack, tenant_id, ["customers:write"], kind="partner")
    for body, field in (
        ({"email": "a@example.com"}, "name"),
        ({"name": "Ann", "email": "not-an-address"}, "email"),
        ({"name": "Ann", "country": "Germany"}, "country"),
        ({"name": "Ann", "unknown": 1}, "unknown"),
    ):
        response = await _post(stack, token, body, str(uuid.uuid4()))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, response.text
    missing = await _post(stack, token, {"name": "Ann"}, key=None)
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "Idempotency-Key")
    reader = await client_token(stack, tenant_id, ["customers:read"], kind="partner")
    assert (await _post(stack, reader, {"name": "Ann"})).status_code == 403
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            stack.url("identity", "/partner/signups"),
            content=b"{not json",
            headers={"authorization": f"Bearer {token}", "idempotency-key": "x"},
        )
    assert response.status_code == 400
