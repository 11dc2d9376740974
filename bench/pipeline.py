"""Event pipeline benchmark: interactions through engagement's HTTP ingestion, its outbox, the
broker and rewards' consumer, to points credited by a rule; against RabbitMQ's own publish and
consume rates.

The tenant gets one rule (every ``engagement.interaction.recorded.v1`` pays 1 point) and
``--customers`` customers with linked X profiles (registered and linked through identity, as
staff would); the interactions are theirs, so each one is a rule payout and a ledger entry in
rewards. Measured:

- throughput: ``--burst`` interactions posted as fast as 4 clients can (batches of 100) until
  rewards has paid them all: interactions credited/s end to end;
- lag at a steady rate (``--rate`` interactions/s for ``--seconds``): from the HTTP request
  being sent (the interaction's time is the time of sending) to rewards' payout, p50 and p99;
- the floor: persistent 465-byte messages through a quorum queue with pipelined confirms,
  then consumed with manual acks (prefetch 500), on the same broker.

Writes ``bench/results/pipeline.json``.

    .venv/bin/python -m bench.pipeline [--runs 3] [--burst 2000] [--rate 50] [--seconds 10]
        [--rewards-processes 1 --rewards-processes 2]

The whole measurement is made once per ``--rewards-processes`` count (1 and 2 by default:
competing consumers on rewards' quorum queue), each on a fresh stack; the CPU figures add up
every process of every service.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx

from bench.harness import (
    AMQP_BASE,
    BenchStack,
    bench_stack,
    graphql,
    linked_customers,
    ratio,
    record,
    summary,
)

RULE = """
mutation($input: RuleInput!) { createRule(input: $input) { id } }
"""


class Credits:
    """Rewards' payouts of the benchmark's rule, read from its database."""

    def __init__(self, stack: BenchStack, rule_id: str) -> None:
        self.dsn = stack.stack.database_url("rewards")
        self.rule_id = uuid.UUID(rule_id)
        self.conn: asyncpg.Connection | None = None

    async def count(self) -> int:
        if self.conn is None:
            self.conn = await asyncpg.connect(self.dsn)
        found: int = await self.conn.fetchval(
            "SELECT count(*) FROM rewards.rule_payouts WHERE rule_id = $1", self.rule_id
        )
        return found

    async def lags_since(self, since: datetime) -> list[float]:
        """Seconds from each interaction's time (when it was sent) to its payout."""
        assert self.conn is not None
        rows = await self.conn.fetch(
            "SELECT extract(epoch FROM created_at - occurred_at) AS lag "
            "FROM rewards.rule_payouts WHERE rule_id = $1 AND occurred_at >= $2",
            self.rule_id,
            since,
        )
        return sorted(float(r["lag"]) for r in rows)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


def _items(authors: list[str], n: int) -> list[dict[str, Any]]:
    sent = datetime.now(UTC).isoformat()
    return [
        {
            "channel": "x",
            "platform_id": f"bench-{uuid.uuid4().hex}",
            "kind": "post",
            "author": {"platform_user_id": authors[i % len(authors)]},
            "text": "great service, thanks",
            "created_at": sent,
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


async def _wait_for(credits: Credits, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (found := await credits.count()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if found < count:
        raise TimeoutError(f"only {found} of {count} interactions were credited")


async def _burst(
    stack: BenchStack, credits: Credits, authors: list[str], n: int, cpu: list[dict[str, float]]
) -> float:
    """End-to-end interactions credited/s for ``n`` interactions posted at once; the CPU the
    services used for them (ms per interaction, each and summed) is appended to ``cpu``."""
    target = await credits.count() + n
    batches = [_items(authors, 100) for _ in range(n // 100)]
    meter = stack.cpu().start()
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120) as http:
        queue = list(batches)

        async def poster() -> None:
            while queue:
                await _post(http, stack, queue.pop())

        await asyncio.gather(*(poster() for _ in range(4)))
        await _wait_for(credits, target, timeout=120 + n / 20)
    elapsed = time.monotonic() - started
    # Let the other consumers (identity's, engagement's own) finish the burst's events too.
    await asyncio.sleep(1.0)
    meter.stop()
    cpu.append(meter.ms_per(n))
    return n / elapsed


async def _steady(
    stack: BenchStack, credits: Credits, authors: list[str], rate: int, seconds: float
) -> list[float]:
    """Lags (s) of interactions sent at ``rate``/s in batches of 10 for ``seconds``."""
    target = await credits.count()
    since = datetime.now(UTC)
    started = time.monotonic()
    sent = 0
    async with httpx.AsyncClient(timeout=60) as http:
        while time.monotonic() - started < seconds:
            await _post(http, stack, _items(authors, 10))
            sent += 10
            target += 10
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await _wait_for(credits, target, timeout=120)
    return await credits.lags_since(since)


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


async def run(stack: BenchStack, args: argparse.Namespace, authors: list[str]) -> dict[str, Any]:
    amqp_url = f"{AMQP_BASE}/{stack.stack.vhost}"
    rule = {
        "name": "Bench: every interaction",
        "trigger": "engagement.interaction.recorded.v1",
        "reward": {"kind": "POINTS", "points": 1},
    }
    rule_id = graphql(stack, RULE, {"input": rule}, "rewards")["createRule"]["id"]
    credits = Credits(stack, rule_id)
    try:
        await _burst(stack, credits, authors, 200, [])  # warm-up
        cpu: list[dict[str, float]] = []
        bursts = [await _burst(stack, credits, authors, args.burst, cpu) for _ in range(args.runs)]
        p50s, p99s = [], []
        for _ in range(args.runs):
            lags = await _steady(stack, credits, authors, args.rate, args.seconds)
            p50s.append(1000 * _percentile(lags, 0.5))
            p99s.append(1000 * _percentile(lags, 0.99))
    finally:
        await credits.close()
    floors = [await _broker_floor(amqp_url, args.floor_messages) for _ in range(args.runs)]
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
        # Summed over every service process, from the first post until a second after the
        # last credit (so identity's and engagement's consumers count too).
        "cpu_ms_per_interaction": summary([c["total"] for c in cpu]),
        "cpu_ms_per_interaction_by_service": cpu[-1],
        "ends_at": "rewards' rule payout and ledger entry (1 point per interaction)",
        "settings": vars(args),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--floor-messages", type=int, default=20_000)
    parser.add_argument(
        "--rewards-processes",
        type=int,
        action="append",
        help="run the whole benchmark with this many rewards processes (repeatable; "
        "default: once with 1 and once with 2)",
    )
    args = parser.parse_args()
    counts = args.rewards_processes or [1, 2]
    del args.rewards_processes
    figures: dict[str, Any] = {}
    for count in counts:
        print(f"pipeline with {count} rewards process(es)", flush=True)
        with bench_stack(replicas={"rewards": count}) as stack:
            authors = [author for _, author in linked_customers(stack, args.customers)]
            measured = asyncio.run(run(stack, args, authors))
            measured["memory_mib_after"] = stack.rss()
        figures[f"rewards_processes_{count}"] = measured
    record("pipeline", figures)


if __name__ == "__main__":
    main()
