"""A relay process that dies (like SIGKILL) after the broker confirmed, before marking rows.

``python -m tests.reliability.crashing_relay <dsn> <amqp-url> <schema>``; exits with 137.
"""

from __future__ import annotations

import asyncio
import os
import sys

import aio_pika
import asyncpg

from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange


async def main(dsn: str, amqp_url: str, schema: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await declare_exchange(channel, "crm.events")

    async def die(seqs: list[int]) -> None:
        print(f"published {len(seqs)} rows; dying before the mark", flush=True)
        os._exit(137)

    relay = OutboxRelay(dsn=dsn, schema=schema, exchange=exchange, after_publish=die)
    conn = await asyncpg.connect(dsn)
    await relay.publish_batch(conn)
    sys.exit("the relay did not reach the crash point (no unsent rows?)")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
