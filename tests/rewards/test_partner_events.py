"""Partners' purchase facts on the exchange, through rewards' real consumer: valid ones flow
(delivered twice, paid once), invalid ones are parked at once with their reason."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import EventConsumer
from crm_shared.events.parking import ParkedMessage, list_parked
from crm_shared.events.topology import declare_exchange
from rewards.accounts import service as ledger
from rewards.handlers import build_handlers
from rewards.purchases.events import PurchaseReported, RefundReported
from rewards.referrals.handlers import CustomerRegisteredWithReferral
from rewards.settings import RewardsSettings
from tests.support.waiting import eventually


@pytest.fixture
async def consumer(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[EventConsumer]:
    """Rewards' handlers on a queue of this test's own."""
    consumer = EventConsumer(
        service=f"partners{uuid.uuid4().hex[:6]}",
        database=rewards_db,
        handlers=build_handlers(RewardsSettings(welcome_points=100)),
        retry_delays_ms=[100],
        delivery_limit=5,
        prefetch=20,
    )
    await consumer.start(amqp, "crm.events")
    yield consumer
    await consumer.stop()


def envelope(event: Event, tenant_id: uuid.UUID, data: dict[str, Any] | None = None) -> Envelope:
    wrapped = Envelope.wrap(
        event, source="/partners/shop", tenant_id=tenant_id, subject=None, trace_headers={}
    )
    return wrapped if data is None else wrapped.model_copy(update={"data": data})


async def publish(
    amqp: aio_pika.abc.AbstractRobustConnection, *envelopes: Envelope, times: int = 1
) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await declare_exchange(channel, "crm.events")
    for item in envelopes:
        for _ in range(times):
            await exchange.publish(
                aio_pika.Message(item.to_json(), message_id=str(item.id), type=item.type),
                routing_key=item.routing_key,
            )
    await channel.close()


async def scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.session() as session:
        return (await session.execute(text(sql), params)).scalar_one_or_none()


async def test_an_invalid_partner_event_is_parked_with_its_reason_while_valid_ones_flow(
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    consumer: EventConsumer,
) -> None:
    tenant = uuid.uuid4()
    referrer, referred = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    await publish(
        amqp,
        envelope(CustomerRegisteredWithReferral(customer_id=referrer, registered_at=now), tenant),
    )
    code = await eventually(
        lambda: scalar(
            rewards_db,
            "SELECT code FROM rewards.referral_codes WHERE tenant_id = :t AND customer_id = :c",
            t=tenant,
            c=referrer,
        ),
        lambda found: found is not None,
    )
    registered = CustomerRegisteredWithReferral(
        customer_id=referred, registered_at=now, referral_code=code
    )
    bought = PurchaseReported(
        order_id="o-1", customer_id=referred, amount_cents=2_500, currency="EUR", occurred_at=now
    )
    good = envelope(bought, tenant)
    negative = envelope(bought, tenant, {**bought.model_dump(mode="json"), "amount_cents": -1})
    dollars = envelope(
        bought, tenant, {**bought.model_dump(mode="json"), "order_id": "o-2", "currency": "USD"}
    )
    too_much = envelope(RefundReported(order_id="o-1", amount_cents=9_999, occurred_at=now), tenant)
    await publish(amqp, envelope(registered, tenant), times=2)
    await eventually(
        lambda: scalar(
            rewards_db,
            "SELECT status FROM rewards.referrals WHERE tenant_id = :t AND referred_id = :c",
            t=tenant,
            c=referred,
        ),
        lambda status: status == "attributed",
    )
    await publish(amqp, good, times=2)
    await publish(amqp, negative, dollars)
    await eventually(
        lambda: scalar(
            rewards_db,
            "SELECT count(*) FROM rewards.purchases WHERE tenant_id = :t",
            t=tenant,
        ),
        lambda n: n == 1,
    )
    await publish(amqp, too_much)

    channel = await amqp.channel()

    async def parked() -> list[ParkedMessage]:
        return await list_parked(channel, consumer.names.service)

    found = await eventually(parked, lambda messages: len(messages) == 3, timeout=15)
    errors = {message.message_id: message.error for message in found}
    assert errors[str(negative.id)].startswith(
        "rejected: invalid partner.purchase.reported.v1 data: amount_cents:"
    )
    assert "this tenant's purchases are in EUR" in errors[str(dollars.id)]
    assert "more than the 2500 cents left to refund" in errors[str(too_much.id)]
    assert all(message.attempts == 1 for message in found)

    await asyncio.sleep(0.5)
    assert (
        await scalar(
            rewards_db,
            "SELECT status FROM rewards.referrals WHERE tenant_id = :t AND referred_id = :c",
            t=tenant,
            c=referred,
        )
        == "rewarded"
    )
    async with rewards_db.session() as session:
        balances = await ledger.get_balances(
            session=session, tenant_id=tenant, customer_ids=[referrer, referred]
        )
    assert balances == {referrer: 100 + 500, referred: 100 + 250}
    assert (
        await scalar(
            rewards_db,
            "SELECT count(*) FROM rewards.outbox WHERE type = 'rewards.purchase.recorded.v1' "
            "AND envelope->>'tenantid' = :t",
            t=str(tenant),
        )
        == 1
    )
