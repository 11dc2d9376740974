"""Operators' view of parked messages: list them with their errors, replay them.

``python -m crm_shared.events.parking list rewards`` and
``python -m crm_shared.events.parking replay rewards --all`` (or ``--id <message id>``).
Replay sends the message back to ``<service>.events`` with a fresh attempt count; the inbox
keeps handlers that already succeeded from running twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from crm_shared.events.consumer import ATTEMPT_HEADER, ERROR_HEADER, copy_of
from crm_shared.events.topology import QueueNames


@dataclass(frozen=True)
class ParkedMessage:
    """A parked message as an operator sees it."""

    message_id: str | None
    type: str | None
    routing_key: str
    attempts: int
    error: str
    failed_at: str


async def list_parked(
    channel: AbstractChannel, service: str, *, limit: int = 100
) -> list[ParkedMessage]:
    """Up to ``limit`` parked messages of ``service``; they stay parked (requeued on close)."""
    queue = await channel.get_queue(QueueNames(service).parked)
    found = []
    seen = []
    for _ in range(limit):
        message = await queue.get(fail=False)
        if message is None:
            break
        seen.append(message)
        headers = message.headers or {}
        found.append(
            ParkedMessage(
                message_id=message.message_id,
                type=message.type,
                routing_key=str(headers.get("x-crm-routing-key", message.routing_key or "")),
                attempts=int(str(headers.get(ATTEMPT_HEADER, 0))),
                error=str(headers.get(ERROR_HEADER, _death_reason(headers))),
                failed_at=str(headers.get("x-crm-failed-at", "")),
            )
        )
    for message in seen:
        await message.nack(requeue=True)
    return found


def _death_reason(headers: Mapping[str, Any]) -> str:
    # Parked by the broker (delivery limit) rather than by the consumer.
    return "delivery limit exceeded" if headers.get("x-death") else "unknown"


async def replay_parked(
    channel: AbstractChannel, service: str, *, message_id: str | None = None, limit: int = 10_000
) -> int:
    """Send parked messages (all, or the one with ``message_id``) back to be handled again."""
    names = QueueNames(service)
    queue = await channel.get_queue(names.parked)
    replayed = 0
    skipped = []
    for _ in range(limit):
        message = await queue.get(fail=False)
        if message is None:
            break
        if message_id is not None and message.message_id != message_id:
            skipped.append(message)
            continue
        headers = {
            k: v
            for k, v in (message.headers or {}).items()
            if k not in (ATTEMPT_HEADER, "x-death", "x-delivery-count")
        }
        await channel.default_exchange.publish(copy_of(message, headers), routing_key=names.events)
        await message.ack()
        replayed += 1
        if message_id is not None:
            break
    for message in skipped:
        await message.nack(requeue=True)
    return replayed


def main() -> None:
    parser = argparse.ArgumentParser(description="List or replay a service's parked messages.")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("service")
    parser.add_argument(
        "--amqp", default=os.environ.get("CRM_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/crm")
    )
    parser.add_argument("--id", dest="message_id", help="replay only this message id")
    parser.add_argument("--all", action="store_true", help="replay every parked message")
    args = parser.parse_args()
    if args.command == "replay" and not (args.all or args.message_id):
        parser.error("replay needs --all or --id")

    async def run() -> None:
        connection = await aio_pika.connect(args.amqp)
        try:
            channel = await connection.channel(publisher_confirms=True)
            if args.command == "list":
                for parked in await list_parked(channel, args.service):
                    print(
                        f"{parked.message_id}\t{parked.type}\tattempts={parked.attempts}\t"
                        f"{parked.failed_at}\t{parked.error}"
                    )
            else:
                count = await replay_parked(channel, args.service, message_id=args.message_id)
                print(f"replayed {count} message(s) to {QueueNames(args.service).events}")
        finally:
            await connection.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
