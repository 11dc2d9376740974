"""A freshly started relay process that publishes a schema's unsent outbox rows, then exits.

``python -m tests.ops.relay_once <dsn> <amqp-url> <schema>``. It has no tracer of its own and
nothing in memory from the process that wrote the rows: the trace can only come from the row.
"""

from __future__ import annotations

import asyncio
import sys

import aio_pika
import asyncpg

from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange


async def main(dsn: str, amqp_url: str, schema: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, "crm.events")
        relay = OutboxRelay(dsn=dsn, schema=schema, exchange=exchange)
        conn = await asyncpg.connect(dsn)
        try:
            while await relay.publish_batch(conn):
                pass
        finally:
            await conn.close()
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
