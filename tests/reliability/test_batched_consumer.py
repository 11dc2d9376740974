"""A batched consumer (many deliveries, one transaction): a poison message is parked alone
while the rest of its batch commits, a redelivered batch changes nothing, a customer's events
apply in delivery order, and a batch handler gets consecutive events together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import BatchHandler, EventConsumer, Handler, Rejected, registry
from crm_shared.events.parking import ParkedMessage, list_parked
from crm_shared.events.topology import declare_exchange
from rewards.accounts import service as ledger
from rewards.handlers import build_handlers
from rewards.rules import service as rules
from rewards.rules.conditions import Reward, RewardKind, RuleDefinition, Trigger
from rewards.rules.handlers import InteractionRecorded
from rewards.settings import RewardsSettings
from tests.conftest import settings_for
from tests.support.waiting import eventually

EFFECTS = "rewards.test_batch_effects"


class Step(Event):
    type = "test.batch.step.v1"
    customer: int
    n: int


class Noted(Event):
    type = "test.batch.noted.v1"
    n: int


@pytest.fixture
async def effects(rewards_db: Database) -> AsyncIterator[str]:
    """A table the handlers write to, in the batch's transaction (what committed is there)."""
    async with rewards_db.session() as session, session.begin():
        await session.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {EFFECTS} (seq bigserial PRIMARY KEY, "
                "run text NOT NULL, customer int NOT NULL, n int NOT NULL, how text NOT NULL)"
            )
        )
    yield EFFECTS


async def _write(session: AsyncSession, run: str, customer: int, n: int, how: str) -> None:
    await session.execute(
        text(f"INSERT INTO {EFFECTS} (run, customer, n, how) VALUES (:r, :c, :n, :h)"),
        {"r": run, "c": customer, "n": n, "h": how},
    )


async def _rows(db: Database, run: str) -> list[tuple[int, int, str]]:
    async with db.session() as session:
        found = await session.execute(
            text(f"SELECT customer, n, how FROM {EFFECTS} WHERE run = :r ORDER BY seq"),
            {"r": run},
        )
        return [(int(c), int(n), str(h)) for c, n, h in found.all()]


def _envelope(event: Event, tenant_id: uuid.UUID) -> Envelope:
    return Envelope.wrap(
        event, source="/tests", tenant_id=tenant_id, subject=None, trace_headers={}
    )


async def _publish(
    amqp: aio_pika.abc.AbstractRobustConnection, envelopes: Sequence[Envelope]
) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await declare_exchange(channel, "crm.events")
    for envelope in envelopes:
        await exchange.publish(
            aio_pika.Message(envelope.to_json(), message_id=str(envelope.id)),
            routing_key=envelope.routing_key,
        )
    await channel.close()


def _consumer(db: Database, handlers: list[Handler[Any]], *, batch: int = 50) -> EventConsumer:
    return EventConsumer(
        service=f"batch{uuid.uuid4().hex[:6]}",
        database=db,
        handlers=registry(*handlers),
        retry_delays_ms=[200, 200],
        delivery_limit=10,
        prefetch=100,
        batch_size=batch,
        batch_wait_ms=50,
    )


async def test_a_poison_message_in_a_batch_is_parked_alone_while_the_rest_commit(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection, effects: str
) -> None:
    run = uuid.uuid4().hex
    calls: list[int] = []

    async def step(event: Step, *, envelope: Envelope, session: AsyncSession) -> None:
        calls.append(event.n)
        await _write(session, run, event.customer, event.n, "step")
        if event.n == 13:
            raise Rejected("13 is unlucky")
        if event.n == 27:
            raise RuntimeError("27 always fails")

    consumer = _consumer(rewards_db, [Handler(Step, step)])
    await consumer.start(amqp, "crm.events")
    try:
        tenant = uuid.uuid4()
        await _publish(amqp, [_envelope(Step(customer=n % 3, n=n), tenant) for n in range(40)])

        async def parked() -> list[ParkedMessage]:
            channel = await amqp.channel()
            try:
                return await list_parked(channel, consumer.names.service)
            finally:
                await channel.close()

        found = await eventually(parked, lambda p: len(p) == 2, timeout=30)
        errors = sorted(p.error for p in found)
        assert "rejected: 13 is unlucky" in errors
        assert "RuntimeError: 27 always fails" in errors
        rows = await _rows(rewards_db, run)
        # Every other step committed exactly once; the poison ones left nothing.
        assert sorted(n for _, n, _ in rows) == [n for n in range(40) if n not in (13, 27)]
        # 13 was tried in its batch, then alone (a Rejected is never retried); 27 in its
        # batch, alone, then twice more from the retry queues.
        assert 1 <= calls.count(13) <= 2
        assert calls.count(27) >= 3
    finally:
        await consumer.stop()


async def test_a_redelivered_batch_changes_nothing(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection, effects: str
) -> None:
    run = uuid.uuid4().hex

    async def step(event: Step, *, envelope: Envelope, session: AsyncSession) -> None:
        await _write(session, run, event.customer, event.n, "step")

    consumer = _consumer(rewards_db, [Handler(Step, step)])
    await consumer.start(amqp, "crm.events")
    try:
        tenant = uuid.uuid4()
        envelopes = [_envelope(Step(customer=0, n=n), tenant) for n in range(30)]
        await _publish(amqp, envelopes)
        await eventually(lambda: _rows(rewards_db, run), lambda r: len(r) == 30, timeout=20)
        # The same batch again, and a copy of each event inside one batch.
        await _publish(amqp, [e for e in envelopes for _ in range(2)])
        await _publish(amqp, [_envelope(Step(customer=0, n=99), tenant)])
        await eventually(lambda: _rows(rewards_db, run), lambda r: len(r) == 31, timeout=20)
        rows = await _rows(rewards_db, run)
        assert sorted(n for _, n, _ in rows) == [*range(30), 99]
    finally:
        await consumer.stop()


async def test_a_customers_events_apply_in_delivery_order_across_batches_and_splits(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection, effects: str
) -> None:
    run = uuid.uuid4().hex

    async def step(event: Step, *, envelope: Envelope, session: AsyncSession) -> None:
        await _write(session, run, event.customer, event.n, "step")
        if event.n == 50:
            # A failure in the middle splits its batch: the order must survive that too.
            raise Rejected("50")

    consumer = _consumer(rewards_db, [Handler(Step, step)], batch=20)
    await consumer.start(amqp, "crm.events")
    try:
        tenant = uuid.uuid4()
        await _publish(amqp, [_envelope(Step(customer=n % 4, n=n), tenant) for n in range(120)])
        await eventually(lambda: _rows(rewards_db, run), lambda r: len(r) == 119, timeout=30)
        rows = await _rows(rewards_db, run)
        for customer in range(4):
            applied = [n for c, n, _ in rows if c == customer]
            assert applied == sorted(applied)
            assert len(applied) == 30 - (customer == 50 % 4)
    finally:
        await consumer.stop()


async def test_a_batch_handler_gets_consecutive_events_together_in_order(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection, effects: str
) -> None:
    run = uuid.uuid4().hex
    sizes: list[int] = []

    async def steps(
        events: list[Step], *, envelopes: list[Envelope], session: AsyncSession
    ) -> None:
        assert len(events) == len(envelopes)
        sizes.append(len(events))
        for event in events:
            await _write(session, run, event.customer, event.n, "batch")
            if event.n == 7:
                raise RuntimeError("7 fails")

    async def note(event: Noted, *, envelope: Envelope, session: AsyncSession) -> None:
        await _write(session, run, -1, event.n, "note")

    consumer = _consumer(rewards_db, [BatchHandler(Step, steps), Handler(Noted, note)])
    await consumer.start(amqp, "crm.events")
    try:
        tenant = uuid.uuid4()
        envelopes = [
            _envelope(Noted(n=n) if n in (5, 12) else Step(customer=0, n=n), tenant)
            for n in range(20)
        ]
        await _publish(amqp, envelopes)
        await eventually(lambda: _rows(rewards_db, run), lambda r: len(r) == 19, timeout=30)
        rows = await _rows(rewards_db, run)
        # Delivery order across the batch handler's groups and the plain handler; 7 failed
        # alone (its group was split) and went to the retry queue and the parking queue.
        assert [n for _, n, _ in rows] == [n for n in range(20) if n != 7]
        assert [how for _, n, how in rows if n in (5, 12)] == ["note", "note"]
        assert max(sizes) > 1
    finally:
        await consumer.stop()


async def test_two_rewards_consumers_side_by_side_pay_each_interaction_once(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection, isolated: devstack.Stack
) -> None:
    """Competing consumers on rewards' quorum queue, each with its own pool (as two processes
    have), in batches: every interaction paid once, balances exact, the ledger consistent,
    even with every event delivered twice."""
    settings = RewardsSettings(welcome_points=100)
    tenant = uuid.uuid4()
    async with rewards_db.session() as session, session.begin():
        await rules.ensure_tenant(session, tenant_id=tenant, welcome_points=100)
        rule, _ = await rules.create_rule(
            session=session,
            tenant_id=tenant,
            actor="test",
            definition=RuleDefinition(
                name="every interaction",
                trigger=Trigger.INTERACTION_RECORDED,
                reward=Reward(kind=RewardKind.POINTS, points=1),
            ),
        )
    other = settings_for(isolated, "rewards")
    other_db = Database(other)
    service = f"rewards{uuid.uuid4().hex[:6]}"
    consumers = [
        EventConsumer(
            service=service,
            database=db,
            handlers=build_handlers(settings),
            retry_delays_ms=[200, 400],
            delivery_limit=10,
            prefetch=60,
            batch_size=30,
            batch_wait_ms=5,
        )
        for db in (rewards_db, other_db)
    ]
    second = await aio_pika.connect_robust(other.amqp_url)
    try:
        for consumer, connection in zip(consumers, (amqp, second), strict=True):
            await consumer.start(connection, "crm.events")
        customers = [uuid.uuid4() for _ in range(20)]
        envelopes = [
            _envelope(
                InteractionRecorded(
                    interaction_id=uuid.uuid4(),
                    customer_id=customers[n % 20],
                    channel="X",
                    kind="comment",
                    occurred_at=datetime.now(UTC),
                ),
                tenant,
            )
            for n in range(300)
        ]
        await _publish(amqp, [e for e in envelopes for _ in range(2)])

        async def paid() -> int:
            async with rewards_db.session() as session:
                found = await session.execute(
                    text("SELECT count(*) FROM rewards.rule_payouts WHERE rule_id = :r"),
                    {"r": rule.id},
                )
                return int(found.scalar_one())

        await eventually(paid, lambda n: n >= 300, timeout=90)
        await asyncio.sleep(1.0)
        assert await paid() == 300
        async with rewards_db.session() as session:
            balances = await ledger.get_balances(
                session=session, tenant_id=tenant, customer_ids=customers
            )
            assert balances == dict.fromkeys(customers, 15)
            assert await ledger.check_ledger(session, tenant) == []
    finally:
        for consumer in consumers:
            await consumer.stop()
        await second.close()
        await other_db.dispose()
