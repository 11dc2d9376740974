"""Event pipeline benchmark: interactions through engagement's HTTP ingestion, its outbox, the
broker and a consumer, end to end; against RabbitMQ's own publish and consume rates.

Rewards does not credit interactions yet, so the pipeline ends at a consumer of rewards'
(in this process, on rewards' database and inbox, with the real ``EventConsumer``) whose
handler records when each ``engagement.interaction.recorded.v1`` arrived. Measured:

- throughput: ``--burst`` interactions posted as fast as 4 clients can (batches of 100) until
  the consumer handled them all: interactions/s end to end;
- lag at a steady rate (``--rate`` interactions/s for ``--seconds``): from the HTTP request
  being sent (its time rides in the author's id) to the consumer's handler, p50 and p99;
- the floor: persistent 465-byte messages through a quorum queue with pipelined confirms,
  then consumed with manual acks (prefetch 500), on the same broker.

Writes ``bench/results/pipeline.json``.

    .venv/bin/python -m bench.pipeline [--runs 3] [--burst 2000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx

from bench.harness import AMQP_BASE, BenchStack, bench_stack, ratio, record, summary
from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import EventConsumer, Handler, registry
from rewards.settings import RewardsSettings


class InteractionRecorded(Event):
    """The bench's reading of engagement's event: only who wrote it."""

    type = "engagement.interaction.recorded.v1"
    platform_user_id: str | None = None


class Arrivals:
    """When each interaction's event reached the handler, and its end-to-end lag."""

    def __init__(self) -> None:
        self.count = 0
        self.lags: list[float] = []

    async def handle(self, event: InteractionRecorded, *, envelope: Envelope, **_: Any) -> None:
        self.count += 1
        author = event.platform_user_id or ""
        if author.startswith("sent-"):
            sent_us = int(author.split("-")[1])
            self.lags.append(time.time() - sent_us / 1e6)


def _items(n: int, *, sent: float | None = None) -> list[dict[str, Any]]:
    stamp = int((sent or time.time()) * 1e6)
    now = datetime.now(UTC).isoformat()
    return [
        {
            "channel": "x",
            "platform_id": f"bench-{uuid.uuid4().hex}",
            "kind": "post",
            "author": {"platform_user_id": f"sent-{stamp}-{i % 5}"},
            "text": "great service, thanks",
            "created_at": now,
        }
        for i in range(n)
    ]


async def _post(http: httpx.AsyncClient, stack: BenchStack, items: list[dict[str, Any]]) -> None:
    response = await http.post(
        stack.stack.url("engagement", "/ingest/normalized"),
        json=items,
        headers={"authorization": f"Bearer {stack.token}"},
    )
    response.raise_for_status()


async def _wait_for(arrivals: Arrivals, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while arrivals.count < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if arrivals.count < count:
        raise TimeoutError(f"only {arrivals.count} of {count} events arrived")


async def _burst(stack: BenchStack, arrivals: Arrivals, n: int) -> float:
    """End-to-end interactions/s for ``n`` interactions posted at once."""
    target = arrivals.count + n
    batches = [_items(100) for _ in range(n // 100)]
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120) as http:
        queue = list(batches)

        async def poster() -> None:
            while queue:
                await _post(http, stack, queue.pop())

        await asyncio.gather(*(poster() for _ in range(4)))
        await _wait_for(arrivals, target, timeout=120 + n / 20)
    return n / (time.monotonic() - started)


async def _steady(stack: BenchStack, arrivals: Arrivals, rate: int, seconds: float) -> list[float]:
    """Lags (s) of interactions sent at ``rate``/s in batches of 10 for ``seconds``."""
    arrivals.lags.clear()
    target = arrivals.count
    started = time.monotonic()
    sent = 0
    async with httpx.AsyncClient(timeout=60) as http:
        while time.monotonic() - started < seconds:
            await _post(http, stack, _items(10, sent=time.time()))
            sent += 10
            target += 10
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await _wait_for(arrivals, target, timeout=120)
    return sorted(arrivals.lags)


async def _broker_floor(url: str, n: int) -> tuple[float, float]:
    """Publish (confirms pipelined, 500 in flight) and consume (manual ack) msgs/s."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(
        f"bench.floor.{uuid.uuid4().hex[:8]}", durable=True, arguments={"x-queue-type": "quorum"}
    )
    body = b"x" * 465
    started = time.monotonic()
    for start in range(0, n, 500):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )
                for _ in range(min(500, n - start))
            )
        )
    publish = n / (time.monotonic() - started)
    consumer_channel = await connection.channel()
    await consumer_channel.set_qos(prefetch_count=500)
    consuming = await consumer_channel.get_queue(queue.name)
    done = asyncio.Event()
    received = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received
        await message.ack()
        received += 1
        if received == n:
            done.set()

    started = time.monotonic()
    await consuming.consume(on_message)
    await asyncio.wait_for(done.wait(), timeout=120)
    consume = n / (time.monotonic() - started)
    await channel.queue_delete(queue.name)
    await connection.close()
    return publish, consume


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else 0.0


async def run(stack: BenchStack, args: argparse.Namespace) -> dict[str, Any]:
    arrivals = Arrivals()
    amqp_url = f"{AMQP_BASE}/{stack.stack.vhost}"
    connection = await aio_pika.connect_robust(amqp_url)
    db = Database(RewardsSettings(database_url=stack.stack.database_url("rewards")))
    consumer = EventConsumer(
        service="benchrewards",
        database=db,
        handlers=registry(Handler(InteractionRecorded, arrivals.handle)),
        retry_delays_ms=[1000],
        delivery_limit=10,
        prefetch=200,
    )
    await consumer.start(connection, "crm.events")
    try:
        await _burst(stack, arrivals, 200)  # warm-up
        bursts = [await _burst(stack, arrivals, args.burst) for _ in range(args.runs)]
        p50s, p99s = [], []
        for _ in range(args.runs):
            lags = await _steady(stack, arrivals, args.rate, args.seconds)
            p50s.append(1000 * _percentile(lags, 0.5))
            p99s.append(1000 * _percentile(lags, 0.99))
        floors = [await _broker_floor(amqp_url, args.floor_messages) for _ in range(args.runs)]
    finally:
        await consumer.stop()
        await connection.close()
        await db.dispose()
    publish = summary([f[0] for f in floors])
    consume = summary([f[1] for f in floors])
    end_to_end = summary(bursts)
    return {
        "end_to_end_interactions_per_second": end_to_end,
        "steady_rate_per_second": args.rate,
        "lag_p50_ms": summary(p50s),
        "lag_p99_ms": summary(p99s),
        "floor_broker_publish_per_second": publish,
        "floor_broker_consume_per_second": consume,
        "ratio_to_broker_publish": ratio(end_to_end["median"], publish["median"]),
        "ends_at": "a consumer on rewards' database and inbox (rewards credits no interactions)",
        "settings": vars(args),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--floor-messages", type=int, default=20_000)
    args = parser.parse_args()
    with bench_stack() as stack:
        figures = asyncio.run(run(stack, args))
        figures["memory_mib_after"] = stack.rss()
    record("pipeline", figures)


if __name__ == "__main__":
    main()
