"""Wrong passwords lock the account: even the right one is refused until the lock ends, with
a clear error, and the tenant's audit log says so."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from identity.access import throttle
from identity.settings import IdentitySettings
from tests.e2e.conftest import make_tenant
from tests.support.auth import create_staff_user, staff_token
from tests.support.waiting import eventually

AUDIT = """
query($r: String) {
  auditLog(first: 5, recordId: $r) { edges { node { actor action recordType details } } }
}
"""


async def _login(client: httpx.AsyncClient, stack: devstack.Stack, form: dict[str, str]) -> Any:
    return await client.post(
        stack.url("identity", "/oauth/token"), data={"grant_type": "password", **form}
    )


async def test_wrong_passwords_lock_the_account_and_the_right_one_waits(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    email, password = await create_staff_user(stack, tenant_id, role="agent")
    other_email, other_password = await create_staff_user(stack, tenant_id, role="agent")
    right = {"username": email, "password": password, "tenant": str(tenant_id)}
    wrong = {**right, "password": "not-" + password}
    async with httpx.AsyncClient(timeout=30) as client:
        failures = [await _login(client, stack, wrong) for _ in range(5)]
        locked = await _login(client, stack, right)
        other = await _login(
            client,
            stack,
            {"username": other_email, "password": other_password, "tenant": str(tenant_id)},
        )
    assert [r.status_code for r in failures] == [400] * 5
    assert {r.json()["error"] for r in failures} == {"invalid_grant"}
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"] == "slow_down"
    assert "too many failed logins" in locked.json()["error_description"]
    assert 1 <= int(locked.headers["retry-after"]) <= 900
    assert "access_token" not in locked.json()
    # Another account from the same address is not locked by these five.
    assert other.status_code == 200, other.text

    admin = await staff_token(stack, tenant_id)
    db = Database(IdentitySettings(database_url=stack.database_url("identity")))
    try:
        async with db.session() as session:
            user_id = (
                await session.execute(
                    text("SELECT id FROM identity.staff_users WHERE tenant_id = :t AND email = :e"),
                    {"t": tenant_id, "e": email},
                )
            ).scalar_one()
    finally:
        await db.dispose()

    async def audit() -> list[dict[str, Any]]:
        found = await devstack.graphql(stack, AUDIT, {"r": str(user_id)}, token=admin)
        return [edge["node"] for edge in found["data"]["auditLog"]["edges"]]

    [record] = await eventually(audit, bool, timeout=30)
    assert record["action"] == "login.locked"
    assert record["recordType"] == "staff_user"
    assert record["actor"].startswith("anonymous@")
    assert email not in str(record)


async def test_a_lock_ends_and_a_good_login_clears_the_count(stack: devstack.Stack) -> None:
    """Against the database: the lock lasts its time, then the count starts again."""
    settings = throttle.ThrottleSettings(max_failures=2, lock_seconds=1, lock_max_seconds=1)
    tenant = str(uuid.uuid4())
    account = throttle.account_key(tenant, "someone@example.com")
    address = f"198.51.100.{uuid.uuid4().int % 250}"
    keys = [account, throttle.address_key(address)]
    db = Database(IdentitySettings(database_url=stack.database_url("identity")))
    try:
        for _ in range(2):
            async with db.session() as session, session.begin():
                await throttle.record_failure(
                    session,
                    settings=settings,
                    tenant=tenant,
                    email="someone@example.com",
                    address=address,
                )
        async with db.session() as session:
            assert await throttle.locked_for(session, keys) > 0
        await asyncio.sleep(1.5)
        async with db.session() as session:
            assert await throttle.locked_for(session, keys) == 0
        async with db.session() as session, session.begin():
            await throttle.clear_account(session, account)
            remaining = (
                await session.execute(
                    text("SELECT count(*) FROM identity.login_throttle WHERE key = :k"),
                    {"k": account},
                )
            ).scalar_one()
        assert remaining == 0
    finally:
        await db.dispose()
