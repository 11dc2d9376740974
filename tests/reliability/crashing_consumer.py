"""A rewards consumer that dies (like SIGKILL) after its handlers committed, before the ack.

``python -m tests.reliability.crashing_consumer <database-url> <amqp-url> <service>``: consumes
``<service>.events`` with rewards' real handlers, acks redeliveries as usual, and on the first
fresh delivery lets the handlers commit and then exits with 137 instead of acking. Exits with
3 when no fresh delivery comes within 20 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, cast

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from rewards.handlers import build_handlers
from rewards.settings import RewardsSettings


class _DiesOnAck:
    """A delivery whose ``ack`` kills the process; everything else is the real message's."""

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self._message = message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)

    async def ack(self, multiple: bool = False) -> None:
        print(f"handled {self._message.message_id}; dying before the ack", flush=True)
        os._exit(137)


class CrashingConsumer(EventConsumer):
    """Commits a fresh delivery's effects, then dies where the ack would be."""

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        if not message.redelivered:
            message = cast(AbstractIncomingMessage, _DiesOnAck(message))
        await super().on_message(message)


async def main(database_url: str, amqp_url: str, service: str) -> None:
    settings = RewardsSettings(database_url=database_url, amqp_url=amqp_url, welcome_points=100)
    connection = await aio_pika.connect_robust(amqp_url)
    consumer = CrashingConsumer(
        service=service,
        database=Database(settings),
        handlers=build_handlers(settings),
        retry_delays_ms=[100],
        delivery_limit=50,
        prefetch=1,
    )
    await consumer.start(connection, "crm.events")
    await asyncio.sleep(20)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
