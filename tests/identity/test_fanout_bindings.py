"""Identity's webhook and partner queues bound only where someone listens, in-process against
the real database and broker: a change that adds interest binds before it commits, one that
drops it unbinds after, the reconciliation removes ``#`` and whatever nothing wants, and a
queue gets only the (type, tenant) pairs it is bound to."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events.topology import QueueNames, declare_exchange, declare_service_queues
from crm_shared.settings import ServiceSettings
from identity.access import service as access
from identity.access.models import ApiClientCreate
from identity.partners import fanout, service
from identity.partners.broker import BrokerAdmin
from identity.partners.models import (
    PartnerSubscriptionCreate,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from tests.conftest import AMQP_BASE
from tests.support.factories import make_tenant
from tests.support.waiting import eventually

EXCHANGE = "crm.events"
REGISTERED = "identity.customer.registered.v1"
UPDATED = "identity.customer.updated.v1"


def _broker(vhost: str) -> BrokerAdmin:
    return BrokerAdmin(
        url="http://127.0.0.1:15672",
        user="guest",
        password="guest",
        vhost=vhost,
        exchange=EXCHANGE,
        partner_exchange="crm.partners",
        queue_max_length_bytes=1024**2,
    )


@pytest.fixture
async def bindings(
    identity_db: Database,
    isolated: devstack.Stack,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> AsyncIterator[fanout.FanoutBindings]:
    """The fan-out bindings of the isolated stack, with both queues declared as a starting
    consumer declares them (bound to ``#``) and emptied."""
    defaults = ServiceSettings()
    channel = await amqp.channel()
    exchange = await declare_exchange(channel, EXCHANGE)
    for purpose in fanout.PURPOSES:
        queue = await declare_service_queues(
            channel,
            exchange=exchange,
            names=QueueNames(f"identity.{purpose}"),
            event_types=["#"],
            retry_delays_ms=defaults.retry_delays_ms,
            delivery_limit=defaults.delivery_limit,
        )
        await queue.purge()
    made = fanout.FanoutBindings(
        amqp_url=f"{AMQP_BASE}/{isolated.vhost}",
        exchange=EXCHANGE,
        management=_broker(isolated.vhost),
    )
    made.install(identity_db)
    yield made
    await made.close()
    await channel.close()


async def _bound(bindings: fanout.FanoutBindings, purpose: str, tenant: uuid.UUID) -> set[str]:
    found = await bindings.bound()
    assert found is not None
    return {k for k in found[purpose] if k == "#" or fanout.tenant_of(k) == tenant}


async def test_an_endpoint_is_bound_before_it_commits_and_unbound_when_its_types_go(
    identity_db: Database, bindings: fanout.FanoutBindings
) -> None:
    tenant = await make_tenant(identity_db)
    async with identity_db.session() as session, session.begin():
        endpoint, _ = await service.create_webhook_endpoint(
            session=session,
            tenant_id=tenant,
            data=WebhookEndpointCreate(url="https://partner.example/h", event_types=[UPDATED]),
        )
        # Not committed yet, and already bound: no event it wants can slip by.
        assert await _bound(bindings, fanout.WEBHOOKS, tenant) == {"#", f"{UPDATED}.{tenant}"}
    await bindings.reconcile()
    assert await _bound(bindings, fanout.WEBHOOKS, tenant) == {f"{UPDATED}.{tenant}"}
    assert await _bound(bindings, fanout.PARTNERS, tenant) == set()

    async with identity_db.session() as session, session.begin():
        await service.update_webhook_endpoint(
            session=session,
            tenant_id=tenant,
            endpoint_id=endpoint.id,
            data=WebhookEndpointUpdate(event_types=[REGISTERED]),
        )

    async def webhooks() -> set[str]:
        return await _bound(bindings, fanout.WEBHOOKS, tenant)

    await eventually(webhooks, lambda keys: keys == {f"{REGISTERED}.{tenant}"})

    # Every type: one binding for all of the tenant's events.
    async with identity_db.session() as session, session.begin():
        await service.update_webhook_endpoint(
            session=session,
            tenant_id=tenant,
            endpoint_id=endpoint.id,
            data=WebhookEndpointUpdate(event_types=[]),
        )
    await eventually(webhooks, lambda keys: keys == {f"#.{tenant}"})


async def test_a_queue_gets_only_the_pairs_someone_listens_to(
    identity_db: Database,
    bindings: fanout.FanoutBindings,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    quiet, listening = await make_tenant(identity_db), await make_tenant(identity_db)
    async with identity_db.session() as session, session.begin():
        await service.create_webhook_endpoint(
            session=session,
            tenant_id=listening,
            data=WebhookEndpointCreate(url="https://partner.example/h", event_types=[UPDATED]),
        )
    await bindings.reconcile()
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await declare_exchange(channel, EXCHANGE)
    sent = [f"{t}.{tenant}" for tenant in (quiet, listening) for t in (REGISTERED, UPDATED)]
    for key in sent:
        await exchange.publish(aio_pika.Message(key.encode()), routing_key=key)
    got: list[str] = []
    for purpose in fanout.PURPOSES:
        queue = await channel.get_queue(fanout.queue_of(purpose), ensure=False)
        await asyncio.sleep(0.2)
        while (message := await queue.get(fail=False)) is not None:
            got.append(f"{purpose}:{message.body.decode()}")
            await message.ack()
    assert got == [f"webhooks:{UPDATED}.{listening}"]
    await channel.close()


async def test_a_subscription_binds_the_partner_queue_and_its_revocation_unbinds_it(
    identity_db: Database, bindings: fanout.FanoutBindings, isolated: devstack.Stack
) -> None:
    tenant = await make_tenant(identity_db)
    broker = _broker(isolated.vhost)
    async with identity_db.session() as session, session.begin():
        client, _ = await access.create_api_client(
            session=session,
            tenant_id=tenant,
            data=ApiClientCreate(name="p", kind="partner", scopes=["customers:read"]),
        )
        subscription, _ = await service.create_partner_subscription(
            session=session,
            tenant_id=tenant,
            data=PartnerSubscriptionCreate(client_id=client.id, event_types=[UPDATED]),
            broker=broker,
        )
    assert f"{UPDATED}.{tenant}" in await _bound(bindings, fanout.PARTNERS, tenant)
    async with identity_db.session() as session, session.begin():
        await service.revoke_partner_subscription(
            session=session, tenant_id=tenant, subscription_id=subscription.id, broker=broker
        )

    async def partners() -> set[str]:
        return await _bound(bindings, fanout.PARTNERS, tenant) - {"#"}

    await eventually(partners, lambda keys: keys == set())


async def test_the_reconciliation_binds_what_is_missing_and_is_idempotent(
    identity_db: Database, bindings: fanout.FanoutBindings
) -> None:
    tenant = await make_tenant(identity_db)
    async with identity_db.session() as session, session.begin():
        await service.create_webhook_endpoint(
            session=session,
            tenant_id=tenant,
            data=WebhookEndpointCreate(url="https://partner.example/h", event_types=[UPDATED]),
        )
    # The broker lost it (a queue recreated, a definitions import): the next round rebinds.
    channel = await bindings._ready()
    queue = await channel.get_queue(fanout.queue_of(fanout.WEBHOOKS), ensure=False)
    await queue.unbind(EXCHANGE, routing_key=f"{UPDATED}.{tenant}")
    first = await bindings.reconcile()
    assert first.bound >= 1
    assert await _bound(bindings, fanout.WEBHOOKS, tenant) == {f"{UPDATED}.{tenant}"}
    again = await bindings.reconcile()
    assert (again.bound, again.unbound) == (0, 0)
