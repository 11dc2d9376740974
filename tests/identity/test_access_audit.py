"""Staff actions of any service land in identity's audit log, through the outbox and broker."""

from __future__ import annotations

import uuid
from typing import Any

from crm_shared import devstack
from crm_shared.audit import record_staff_action
from crm_shared.auth import Principal
from crm_shared.db import Database
from crm_shared.settings import ServiceSettings
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.waiting import eventually

AUDIT = """
query($r: String) {
  auditLog(first: 5, recordId: $r) { edges { node { actor action recordType details } } }
}
"""


async def test_a_rewards_staff_action_is_in_the_audit_log_once(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    agent = Principal(
        tenant_id=uuid.UUID(tenant_id),
        kind="staff",
        subject=str(uuid.uuid4()),
        permissions=frozenset({"points:adjust"}),
        role="agent",
    )
    record_id = str(uuid.uuid4())
    rewards = Database(
        ServiceSettings(
            service_name="rewards",
            db_schema="rewards",
            database_url=stack.database_url("rewards"),
        )
    )
    try:
        async with rewards.session() as session, session.begin():
            await record_staff_action(
                session=session,
                principal=agent,
                action="points.adjusted",
                record_type="account",
                record_id=record_id,
                details={"reason": "goodwill"},
            )
    finally:
        await rewards.dispose()
    admin = await staff_token(stack, tenant_id)

    async def edges() -> list[dict[str, Any]]:
        result = await devstack.graphql(stack, AUDIT, {"r": record_id}, token=admin)
        found: list[dict[str, Any]] = result["data"]["auditLog"]["edges"]
        return found

    [edge] = await eventually(edges, lambda e: len(e) > 0, timeout=20)
    assert edge["node"] == {
        "actor": f"staff:{agent.subject}",
        "action": "points.adjusted",
        "recordType": "account",
        "details": {"reason": "goodwill"},
    }
