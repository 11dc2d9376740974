"""The reconciliation against the real broker's management API: a subscription made when
partner queues were bound to ``crm.events`` loses that binding and the read permission
(which bypassed partner_sharing) and is bound to the partner exchange; one of a client
revoked before revocations cascaded is revoked now; a queue that is gone is not recreated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from identity.access import service as access
from identity.access.models import ApiClientCreate
from identity.partners import service
from identity.partners.broker import BrokerAdmin, access_for
from identity.partners.models import (
    PartnerSubscription,
    PartnerSubscriptionCreate,
    WebhookEndpoint,
    WebhookEndpointCreate,
)
from identity.partners.reconcile import reconcile_partner_subscriptions
from tests.support.factories import make_tenant

MANAGEMENT = "http://127.0.0.1:15672/api"
UPDATED = "identity.customer.updated.v1"


@pytest.fixture
async def management() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=MANAGEMENT, auth=("guest", "guest"), timeout=10) as c:
        yield c


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def _broker(vhost: str) -> BrokerAdmin:
    return BrokerAdmin(
        url="http://127.0.0.1:15672",
        user="guest",
        password="guest",
        vhost=vhost,
        exchange="crm.events",
        partner_exchange="crm.partners",
        queue_max_length_bytes=1024**2,
    )


async def _subscription(
    db: Database, broker: BrokerAdmin, tenant_id: uuid.UUID
) -> tuple[uuid.UUID, PartnerSubscription, WebhookEndpoint]:
    async with db.session() as session, session.begin():
        client, _ = await access.create_api_client(
            session=session,
            tenant_id=tenant_id,
            data=ApiClientCreate(name="p", kind="partner", scopes=["customers:read"]),
        )
        subscription, _ = await service.create_partner_subscription(
            session=session,
            tenant_id=tenant_id,
            data=PartnerSubscriptionCreate(client_id=client.id, event_types=[UPDATED]),
            broker=broker,
        )
        endpoint, _ = await service.create_webhook_endpoint(
            session=session,
            tenant_id=tenant_id,
            data=WebhookEndpointCreate(url="https://partner.example/h", client_id=client.id),
        )
    return client.id, subscription, endpoint


async def _bindings(management: httpx.AsyncClient, vhost: str, queue: str) -> set[tuple[str, str]]:
    found = await management.get(_path("queues", vhost, queue, "bindings"))
    found.raise_for_status()
    rows: list[dict[str, Any]] = found.json()
    return {(b["source"], b["routing_key"]) for b in rows if b["source"]}


async def test_a_subscription_bound_the_old_way_is_moved_to_the_partner_exchange(
    identity_db: Database, isolated: devstack.Stack, management: httpx.AsyncClient
) -> None:
    broker = _broker(isolated.vhost)
    tenant_id = await make_tenant(identity_db)
    _, subscription, _ = await _subscription(identity_db, broker, tenant_id)
    names = access_for(subscription.id)
    key = f"{UPDATED}.{tenant_id}"
    # As subscriptions were made before: bound to crm.events, allowed to read it.
    await management.put(
        _path("exchanges", isolated.vhost, "crm.events"), json={"type": "topic", "durable": True}
    )
    made = await management.post(
        _path("bindings", isolated.vhost, "e", "crm.events", "q", names.queue),
        json={"routing_key": key},
    )
    assert made.status_code == 201
    old = await management.put(
        _path("permissions", isolated.vhost, names.user),
        json={"configure": "^$", "write": "^$", "read": rf"^(crm\.events|{names.queue})$"},
    )
    assert old.status_code in (201, 204)
    assert ("crm.events", key) in await _bindings(management, isolated.vhost, names.queue)

    await reconcile_partner_subscriptions(identity_db, broker=broker)

    assert await _bindings(management, isolated.vhost, names.queue) == {("crm.partners", key)}
    granted = (await management.get(_path("permissions", isolated.vhost, names.user))).json()
    assert "crm\\.events" not in granted["read"] and "crm\\.partners" in granted["read"]
    # A second round changes nothing.
    await reconcile_partner_subscriptions(identity_db, broker=broker)
    assert await _bindings(management, isolated.vhost, names.queue) == {("crm.partners", key)}
    await broker.remove(names)


async def test_a_client_revoked_before_the_cascade_loses_its_subscription_and_webhooks(
    identity_db: Database, isolated: devstack.Stack, management: httpx.AsyncClient
) -> None:
    broker = _broker(isolated.vhost)
    tenant_id = await make_tenant(identity_db)
    client_id, subscription, endpoint = await _subscription(identity_db, broker, tenant_id)
    names = access_for(subscription.id)
    async with identity_db.session() as session, session.begin():  # as revocation used to do
        await session.execute(
            text("UPDATE identity.api_clients SET active = false WHERE id = :id"),
            {"id": client_id},
        )

    await reconcile_partner_subscriptions(identity_db, broker=broker)

    assert (await management.get(_path("users", names.user))).status_code == 404
    assert (await management.get(_path("queues", isolated.vhost, names.queue))).status_code == 404
    async with identity_db.session() as session:
        revoked = await session.get(PartnerSubscription, subscription.id)
        assert revoked is not None and revoked.revoked_at is not None
        assert revoked.revoked_reason == f"API client {client_id} revoked"
        disabled = await session.get(WebhookEndpoint, endpoint.id)
        assert disabled is not None and disabled.disabled_at is not None


async def test_what_is_gone_on_the_broker_is_not_recreated(
    identity_db: Database, isolated: devstack.Stack, management: httpx.AsyncClient
) -> None:
    broker = _broker(isolated.vhost)
    tenant_id = await make_tenant(identity_db)
    _, subscription, _ = await _subscription(identity_db, broker, tenant_id)
    names = access_for(subscription.id)
    await broker.remove(names)  # e.g. removed by hand, or a revocation under way

    await reconcile_partner_subscriptions(identity_db, broker=broker)

    assert (await management.get(_path("queues", isolated.vhost, names.queue))).status_code == 404
    assert (await management.get(_path("users", names.user))).status_code == 404
