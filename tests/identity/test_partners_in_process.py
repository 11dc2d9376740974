"""Partners in-process against the real database: delivery rounds running at once on several
replicas send each due delivery once (rows claimed with SKIP LOCKED and leased); a broker that
refuses leaves no subscription behind."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from crm_shared.auth import Principal
from crm_shared.db import Database
from crm_shared.events import Envelope
from identity.access import service as access
from identity.access.models import ApiClient, ApiClientCreate
from identity.partners import revocation, service
from identity.partners.broker import BrokerAdmin, BrokerUnavailable
from identity.partners.delivery import deliver_due
from identity.partners.models import (
    PartnerSubscription,
    PartnerSubscriptionCreate,
    WebhookEndpoint,
    WebhookEndpointCreate,
)
from identity.settings import IdentitySettings
from identity.tenants.events import TenantCreated
from tests.support.factories import make_tenant
from tests.support.webhook_receiver import WebhookReceiver


async def test_concurrent_rounds_send_each_delivery_once(identity_db: Database) -> None:
    receiver = await WebhookReceiver().start()
    try:
        tenant_id = await make_tenant(identity_db)
        async with identity_db.session() as session, session.begin():
            _, secret = await service.create_webhook_endpoint(
                session=session,
                tenant_id=tenant_id,
                data=WebhookEndpointCreate(url=receiver.url),
            )
            for n in range(12):
                # A tenant-level fact: no customer, so partner_sharing does not hold it back.
                event = TenantCreated(tenant_id=tenant_id, slug=f"t{n}", name="T")
                envelope = Envelope.wrap(
                    event, source="identity", tenant_id=tenant_id, subject=None, trace_headers={}
                )
                assert await service.keep_event(
                    session=session, envelope=envelope, window=timedelta(minutes=5)
                )
        settings = IdentitySettings(webhook_batch_size=5)
        async with httpx.AsyncClient(timeout=5) as client:
            sent = await asyncio.gather(
                *(
                    deliver_due(identity_db, settings=settings, client=lambda: client)
                    for _ in range(3)
                )
            )
        assert sum(sent) == 12
        ids = [r.webhook_id for r in receiver.received]
        assert len(ids) == len(set(ids)) == 12
        assert all(r.verifies_with(secret) for r in receiver.received)
        async with httpx.AsyncClient(timeout=5) as client:
            assert await deliver_due(identity_db, settings=settings, client=lambda: client) == 0
    finally:
        await receiver.stop()


async def test_a_broker_refusal_keeps_no_subscription_and_removes_what_was_made(
    identity_db: Database,
) -> None:
    calls: list[tuple[str, str]] = []

    def broker(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        refused = request.method == "PUT" and "/api/users/" in request.url.path
        return httpx.Response(500 if refused else 201)

    admin = BrokerAdmin(
        url="http://broker.invalid:15672",
        user="u",
        password="p",
        vhost="crm",
        exchange="crm.events",
        partner_exchange="crm.partners",
        queue_max_length_bytes=1024,
        transport=httpx.MockTransport(broker),
    )
    tenant_id = await make_tenant(identity_db)
    async with identity_db.session() as session, session.begin():
        client, _ = await access.create_api_client(
            session=session,
            tenant_id=tenant_id,
            data=ApiClientCreate(name="p", kind="partner", scopes=["customers:read"]),
        )
    data = PartnerSubscriptionCreate(
        client_id=client.id, event_types=["identity.customer.registered.v1"]
    )
    with pytest.raises(BrokerUnavailable):
        async with identity_db.session() as session, session.begin():
            await service.create_partner_subscription(
                session=session, tenant_id=tenant_id, data=data, broker=admin
            )
    async with identity_db.session() as session:
        assert await service.list_partner_subscriptions(session=session, tenant_id=tenant_id) == []
    deleted = [path for method, path in calls if method == "DELETE"]
    assert any("/api/users/partner-" in p for p in deleted)
    assert any("/api/queues/crm/partner." in p for p in deleted)


async def test_a_broker_refusal_leaves_a_revocation_undone_as_a_whole(
    identity_db: Database,
) -> None:
    refuse = {"on": False}

    def broker(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if refuse["on"] and request.method == "DELETE" else 201)

    admin = BrokerAdmin(
        url="http://broker.invalid:15672",
        user="u",
        password="p",
        vhost="crm",
        exchange="crm.events",
        partner_exchange="crm.partners",
        queue_max_length_bytes=1024,
        transport=httpx.MockTransport(broker),
    )
    tenant_id = await make_tenant(identity_db)
    staff = Principal(
        tenant_id=tenant_id,
        kind="staff",
        subject=str(uuid.uuid4()),
        permissions=frozenset({"access:manage"}),
        role="admin",
    )
    async with identity_db.session() as session, session.begin():
        client, _ = await access.create_api_client(
            session=session,
            tenant_id=tenant_id,
            data=ApiClientCreate(name="p", kind="partner", scopes=["customers:read"]),
        )
        subscription, _ = await service.create_partner_subscription(
            session=session,
            tenant_id=tenant_id,
            data=PartnerSubscriptionCreate(
                client_id=client.id, event_types=["identity.customer.updated.v1"]
            ),
            broker=admin,
        )
        endpoint, _ = await service.create_webhook_endpoint(
            session=session,
            tenant_id=tenant_id,
            data=WebhookEndpointCreate(url="https://partner.example/h", client_id=client.id),
        )
    refuse["on"] = True
    with pytest.raises(BrokerUnavailable):
        async with identity_db.session() as session, session.begin():
            await revocation.revoke_client(
                session=session, principal=staff, client_id=client.id, broker=admin
            )
    async with identity_db.session() as session:
        assert (await session.get(ApiClient, client.id)).active  # type: ignore[union-attr]
        kept = await session.get(PartnerSubscription, subscription.id)
        assert kept is not None and kept.revoked_at is None
        still = await session.get(WebhookEndpoint, endpoint.id)
        assert still is not None and still.disabled_at is None
        announced = await session.execute(
            text(
                "SELECT count(*) FROM identity.outbox WHERE envelope->>'type' = :type"
                " AND envelope->'data'->>'record_id' = :client"
            ),
            {"type": "identity.staff_action.recorded.v1", "client": str(client.id)},
        )
        assert announced.scalar_one() == 0  # no audit record of a revocation that did not happen
    refuse["on"] = False
    async with identity_db.session() as session, session.begin():
        await revocation.revoke_client(
            session=session, principal=staff, client_id=client.id, broker=admin
        )
    async with identity_db.session() as session:
        gone = await session.get(PartnerSubscription, subscription.id)
        assert gone is not None and gone.revoked_at is not None
        disabled = await session.get(WebhookEndpoint, endpoint.id)
        assert disabled is not None and disabled.disabled_at is not None
