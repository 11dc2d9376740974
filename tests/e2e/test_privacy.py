"""Privacy across services: one export of everything, and an erasure that every service carries
out and confirms. Marker values are planted in every service for one customer; after the
erasure none is left anywhere in the database, and the ledger's totals have not moved."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.identity.test_customer_graph import LINK, RECORD_PROFILE, REGISTER, _ok
from tests.support.auth import staff_token
from tests.support.waiting import eventually

EXPORT = """
query($id: ID!) { privacyExport(customerId: $id) { customerId identity engagement rewards } }
"""
RECORD = """
mutation($input: RecordInteractionInput!) { recordInteraction(input: $input) { outcome } }
"""
ADJUST = """
mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance } }
"""
BALANCE = "query($id: ID!) { customer(id: $id) { rewards { balance } } }"
ERASE = """
mutation($input: RequestErasureInput!) {
  requestErasure(input: $input) { id completedAt services { service confirmedAt } }
}
"""
REQUESTS = """
{ erasureRequests(first: 5) { edges { node { id completedAt services { service confirmedAt } } } } }
"""


def _admin_url(stack: devstack.Stack) -> str:
    return f"postgresql://postgres@{stack.pg_host}/{stack.database}"


async def _tables_mentioning(stack: devstack.Stack, marker: str) -> list[str]:
    """Every table of every service schema whose rows mention ``marker`` anywhere."""
    conn = await asyncpg.connect(_admin_url(stack))
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('identity', 'engagement', 'rewards')"
            " AND table_type = 'BASE TABLE'"
        )
        found = []
        for row in tables:
            name = f'"{row["table_schema"]}"."{row["table_name"]}"'
            hits = await conn.fetchval(
                f"SELECT count(*) FROM {name} t WHERE t::text ILIKE $1", f"%{marker}%"
            )
            if hits:
                found.append(f"{name}: {hits}")
    finally:
        await conn.close()
    return found


async def _ledger_totals(stack: devstack.Stack, tenant_id: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(_admin_url(stack))
    try:
        rows = await conn.fetch(
            "SELECT a.kind, sum(p.amount)::bigint AS total FROM rewards.postings p"
            " JOIN rewards.accounts a ON a.id = p.account_id WHERE a.tenant_id = $1"
            " GROUP BY a.kind ORDER BY a.kind",
            uuid.UUID(tenant_id),
        )
    finally:
        await conn.close()
    return [(row["kind"], int(row["total"])) for row in rows]


async def test_export_everything_then_erase_everywhere(stack: devstack.Stack) -> None:
    tenant = make_tenant(stack)
    admin = await staff_token(stack, tenant)
    marker = f"zq{uuid.uuid4().hex[:10]}"

    customer = (
        await _ok(
            stack,
            REGISTER,
            {
                "input": {
                    "name": f"Ada {marker}",
                    "email": f"{marker}@example.com",
                    "preferences": {"nickname": marker},
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
                    "channel": "X",
                    "platformUserId": "1456789012345678901",
                    "handle": marker,
                }
            },
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
                "platformId": "1790000000000000001",
                "kind": "post",
                "createdAt": "2026-11-20T10:00:00Z",
                "text": f"I love this brand, says {marker}",
                "author": {"platformUserId": "1456789012345678901", "handle": marker},
            }
        },
        admin,
    )

    async def balance() -> Any:
        data = await _ok(stack, BALANCE, {"id": customer}, admin)
        return data["customer"]["rewards"]

    await eventually(balance, lambda r: r is not None, timeout=30)
    await _ok(
        stack,
        ADJUST,
        {
            "input": {
                "customerId": customer,
                "points": 25,
                "reason": f"goodwill for {marker}",
                "idempotencyKey": str(uuid.uuid4()),  # opaque, as keys should be
            }
        },
        admin,
    )

    async def export() -> dict[str, Any]:
        data: dict[str, Any] = (await _ok(stack, EXPORT, {"id": customer}, admin))["privacyExport"]
        return data

    # The interaction attaches to the customer once engagement has the link event.
    found = await eventually(export, lambda e: bool(e["engagement"]["interactions"]), timeout=30)
    assert found["customerId"] == customer
    for service in ("identity", "engagement", "rewards"):
        assert marker in str(found[service]), service
    assert found["identity"]["customer"]["name"] == f"Ada {marker}"
    assert found["engagement"]["interactions"][0]["text"].endswith(marker)
    assert {e["reason"] for e in found["rewards"]["entries"]} >= {f"goodwill for {marker}"}
    totals = await _ledger_totals(stack, tenant)
    assert await _tables_mentioning(stack, marker)  # the scan does find planted values

    requested = (await _ok(stack, ERASE, {"input": {"customerId": customer}}, admin))[
        "requestErasure"
    ]
    progress = {s["service"]: s["confirmedAt"] for s in requested["services"]}
    assert progress["identity"] is not None and progress["engagement"] is None

    async def request() -> dict[str, Any]:
        data = await _ok(stack, REQUESTS, {}, admin)
        node: dict[str, Any] = data["erasureRequests"]["edges"][0]["node"]
        return node

    done = await eventually(request, lambda r: r["completedAt"] is not None, timeout=30)
    assert done["id"] == requested["id"]
    assert all(s["confirmedAt"] for s in done["services"])

    assert await _tables_mentioning(stack, marker) == []
    assert await _ledger_totals(stack, tenant) == totals
    after = (await _ok(stack, EXPORT, {"id": customer}, admin))["privacyExport"]
    assert after["engagement"]["interactions"] == []
    assert after["rewards"]["balance"] is not None  # amounts stay
    assert {e["reason"] for e in after["rewards"]["entries"]} == {"(erased)"}
