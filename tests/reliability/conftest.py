"""Fixtures of the reliability tests: rewards' real consumer, driven in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest

from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from rewards.handlers import build_handlers
from rewards.settings import RewardsSettings


@pytest.fixture
async def rewards_consumer(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[EventConsumer]:
    """Rewards' consumer with its real handlers, consuming the isolated vhost (in batches,
    as the service runs it)."""
    consumer = EventConsumer(
        service="rewards",
        database=rewards_db,
        handlers=build_handlers(RewardsSettings(welcome_points=100)),
        retry_delays_ms=[100, 200],
        delivery_limit=5,
        prefetch=50,
        batch_size=25,
    )
    await consumer.start(amqp, "crm.events")
    yield consumer
    await consumer.stop()
