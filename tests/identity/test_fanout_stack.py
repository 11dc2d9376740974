"""Fan-out only where someone listens, on the running stack: the events of a tenant with no
webhook endpoint and no partner subscription never reach identity's webhook and partner
queues (no handler runs for them), while another service consumes them; a tenant with an
endpoint gets its events delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from tests.conftest import settings_for
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token
from tests.support.partners import ok, sharing_customer, touch
from tests.support.waiting import eventually
from tests.support.webhook_receiver import WebhookReceiver

MANAGEMENT = "http://127.0.0.1:15672/api"
UPDATED = "identity.customer.updated.v1"
FANOUT_HANDLERS = [
    "identity.partners.handlers.keep_for_webhooks",
    "identity.partners.feed.forward_to_partners",
]
CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id } }
}
"""


@pytest.fixture
async def databases(stack: devstack.Stack) -> AsyncIterator[tuple[Database, Database]]:
    identity = Database(settings_for(stack, "identity"))
    rewards = Database(settings_for(stack, "rewards"))
    yield identity, rewards
    await identity.dispose()
    await rewards.dispose()


async def _everything_bound(stack: devstack.Stack) -> bool:
    """Whether a fan-out queue is still bound to ``#`` (before identity's first reconcile)."""
    async with httpx.AsyncClient(auth=("guest", "guest"), timeout=10) as client:
        for queue in ("identity.webhooks.events", "identity.partners.events"):
            vhost = quote(stack.vhost, safe="")
            found = await client.get(f"{MANAGEMENT}/queues/{vhost}/{queue}/bindings")
            found.raise_for_status()
            if any(b["routing_key"] == "#" for b in found.json()):
                return True
    return False


async def _events_of(db: Database, tenant_id: str) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT id::text FROM identity.outbox WHERE routing_key LIKE :key"),
            {"key": f"%.{tenant_id}"},
        )
        return [r[0] for r in rows]


async def _handled(db: Database, schema: str, ids: list[str], handlers: list[str] | None) -> int:
    where = " AND handler = ANY(:handlers)" if handlers is not None else ""
    async with db.session() as session:
        found = await session.execute(
            text(f"SELECT count(*) FROM {schema}.inbox WHERE event_id::text = ANY(:ids){where}"),
            {"ids": ids, "handlers": handlers},
        )
        return int(found.scalar_one())


async def test_a_tenant_nobody_listens_to_costs_the_fanout_queues_nothing(
    stack: devstack.Stack, databases: tuple[Database, Database]
) -> None:
    identity, rewards = databases
    await eventually(lambda: _everything_bound(stack), lambda bound: not bound, timeout=30)
    receiver = await WebhookReceiver().start()
    try:
        quiet, listening = make_tenant(stack), make_tenant(stack)
        quiet_admin = await staff_token(stack, quiet)
        admin = await staff_token(stack, listening)
        await ok(stack, CREATE, {"input": {"url": receiver.url, "eventTypes": [UPDATED]}}, admin)
        # The quiet tenant's events flow first: rewards handles its registration.
        customer = await sharing_customer(stack, quiet_admin, "Quiet")
        await touch(stack, quiet_admin, customer, "Q")
        quiet_events = await _events_of(identity, quiet)
        assert len(quiet_events) >= 3

        async def rewards_handled() -> int:
            return await _handled(rewards, "rewards", quiet_events, None)

        await eventually(rewards_handled, lambda n: n >= 1, timeout=30)
        # Then the listening tenant's: its update is delivered to its endpoint.
        customer = await sharing_customer(stack, admin, "Heard")
        await touch(stack, admin, customer, "H")

        async def received() -> int:
            return len(receiver.received)

        await eventually(received, lambda n: n >= 1, timeout=30)
        heard = await _events_of(identity, listening)
        assert await _handled(identity, "identity", heard, FANOUT_HANDLERS[:1]) >= 1
        await asyncio.sleep(1.0)  # anything still in flight for the quiet tenant lands
        assert await _handled(identity, "identity", quiet_events, FANOUT_HANDLERS) == 0
    finally:
        await receiver.stop()
