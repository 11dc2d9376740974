"""The same event delivered twice has one effect: the inbox makes handlers idempotent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika
from sqlalchemy import text

from crm_shared.db import Database
from crm_shared.events import Envelope
from crm_shared.events.consumer import EventConsumer
from crm_shared.events.topology import declare_exchange
from rewards.accounts.handlers import CustomerRegistered
from tests.support.ledger import ledger_points
from tests.support.waiting import eventually


async def _effects(db: Database, customer_id: uuid.UUID) -> tuple[list[int], int]:
    """The customer's ledger points and how many PointsCredited events await publishing."""
    async with db.session() as session:
        events = await session.execute(
            text(
                "SELECT count(*) FROM rewards.outbox WHERE type = 'rewards.points.credited.v1' "
                "AND envelope->'data'->>'customer_id' = :c"
            ),
            {"c": str(customer_id)},
        )
        credited = int(events.scalar_one())
    return await ledger_points(db, customer_id), credited


async def test_the_same_event_delivered_twice_credits_once(
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
    rewards_consumer: EventConsumer,
) -> None:
    customer_id = uuid.uuid4()
    envelope = Envelope.wrap(
        CustomerRegistered(customer_id=customer_id, registered_at=datetime.now(UTC)),
        source="/crm/identity",
        tenant_id=uuid.uuid4(),
        subject=str(customer_id),
        trace_headers={},
    )
    channel = await amqp.channel()
    exchange = await declare_exchange(channel, "crm.events")
    for _ in range(2):
        await exchange.publish(
            aio_pika.Message(envelope.to_json(), message_id=str(envelope.id)),
            routing_key=envelope.routing_key,
        )

    await eventually(lambda: _effects(rewards_db, customer_id), lambda e: len(e[0]) >= 1)
    await asyncio.sleep(1.0)
    # One ledger entry and one outgoing PointsCredited: the second delivery changed nothing.
    assert await _effects(rewards_db, customer_id) == ([100], 1)
