"""Every event the running stack publishes is a valid CloudEvent (the ``cloudevents`` SDK
reads it) and validates against its type's committed JSON Schema (docs/events/schemas)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.events.test_catalogue import check_envelope
from tests.identity.test_customer_graph import LINK, RECORD_PROFILE
from tests.support.auth import staff_token
from tests.support.waiting import eventually

REGISTER = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }"
UPDATE = "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { id } }"
CONSENT = "mutation($input: RecordConsentInput!) { recordConsent(input: $input) { purpose } }"
RECORD = """
mutation($input: RecordInteractionInput!) { recordInteraction(input: $input) { outcome } }
"""
ADJUST = "mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance } }"
BALANCE = "query($id: ID!) { customer(id: $id) { rewards { balance } } }"


async def _ok(stack: devstack.Stack, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


async def _published(stack: devstack.Stack) -> list[tuple[str, bytes, bool]]:
    """Every outbox row of the three services: (type, envelope, published)."""
    conn = await asyncpg.connect(f"postgresql://postgres@{stack.pg_host}/{stack.database}")
    try:
        rows = []
        for schema in ("identity", "engagement", "rewards"):
            rows += await conn.fetch(
                f"SELECT type, envelope::text AS envelope, published_at IS NOT NULL AS sent"
                f" FROM {schema}.outbox"
            )
    finally:
        await conn.close()
    return [(r["type"], r["envelope"].encode(), r["sent"]) for r in rows]


async def test_every_published_event_validates_against_its_schema(stack: devstack.Stack) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    customer = (
        await _ok(
            stack,
            REGISTER,
            {"input": {"name": "Eve", "email": f"{uuid.uuid4().hex[:10]}@example.com"}},
            admin,
        )
    )["registerCustomer"]["id"]
    await _ok(stack, UPDATE, {"input": {"id": customer, "givenName": "Eve"}}, admin)
    await _ok(
        stack,
        CONSENT,
        {
            "input": {
                "customerId": customer,
                "purpose": "MARKETING",
                "granted": True,
                "source": "web",
                "policyVersion": "2026-01",
            }
        },
        admin,
    )
    handle = f"eve{uuid.uuid4().hex[:6]}"
    platform_user = str(uuid.uuid4().int)[:19]
    profile = (
        await _ok(
            stack,
            RECORD_PROFILE,
            {"input": {"channel": "X", "platformUserId": platform_user, "handle": handle}},
            admin,
        )
    )["recordSocialProfile"]["id"]
    await _ok(
        stack,
        LINK,
        {"input": {"profileId": profile, "customerId": customer, "evidence": "STAFF_DECISION"}},
        admin,
    )
    await _ok(
        stack,
        RECORD,
        {
            "input": {
                "channel": "x",
                "platformId": str(uuid.uuid4().int)[:19],
                "kind": "post",
                "createdAt": "2026-11-20T10:00:00Z",
                "text": "I love this brand",
                "author": {"platformUserId": platform_user, "handle": handle},
            }
        },
        admin,
    )

    async def balance() -> Any:
        return (await _ok(stack, BALANCE, {"id": customer}, admin))["customer"]["rewards"]

    await eventually(balance, lambda r: r is not None, timeout=30)
    await _ok(
        stack,
        ADJUST,
        {
            "input": {
                "customerId": customer,
                "points": 5,
                "reason": "welcome",
                "idempotencyKey": str(uuid.uuid4()),
            }
        },
        admin,
    )

    async def sent_types() -> set[str]:
        return {t for t, body, sent in await _published(stack) if sent and tenant in body.decode()}

    expected = {
        "identity.customer.registered.v1",
        "identity.customer.updated.v1",
        "identity.consent.changed.v1",
        "identity.social_profile.linked.v1",
        "engagement.interaction.recorded.v1",
        "rewards.points.credited.v1",
    }
    await eventually(sent_types, lambda types: types >= expected, timeout=30)
    rows = await _published(stack)
    assert rows
    for event_type, body, _ in rows:
        assert json.loads(body)["type"] == event_type
        check_envelope(body)  # everything in the outboxes, this test's flow and any other's
