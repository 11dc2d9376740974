"""Bulk ingestion benchmark: interactions from an NDJSON file through engagement's
``/ingest/ndjson`` endpoint (streamed, stored in batches, each item analysed and announced),
against PostgreSQL ``COPY`` of the same rows into a plain table (the floor).

    .venv/bin/python -m bench.bulk [--rows 1000000] [--runs 1]

``--rows`` makes a quick run smaller. Writes ``bench/results/bulk.json``: seconds and rows/s
of each, and the ratio; the CPU milliseconds per row summed over every service process from
the first byte posted until the downstream consumers have drained the events the rows made
(every outbox published, every queue of the vhost empty), and how long that drain took
after the endpoint answered (the target: within the ingest time again). The CPU used while
the endpoint ingested (until it answered) is reported apart: on a loaded machine the drain of
the downstream consumers can outlast ``--drain-timeout``, and the run is then recorded with
the messages left instead of failing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.harness import (
    BenchStack,
    bench_stack,
    drained,
    queued_messages,
    ratio,
    record,
    summary,
    wait_until,
)

TEXTS = [
    "I love this brand, the support team was great",
    "terrible delivery, still waiting after two weeks",
    "does anyone know when the new collection drops?",
    "meh, it's fine I guess",
]


def write_ndjson(path: Path, rows: int) -> None:
    """``rows`` normalized interactions, one JSON object a line."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    run = uuid.uuid4().hex[:8]
    with path.open("wb") as f:
        for i in range(rows):
            f.write(
                orjson.dumps(
                    {
                        "channel": "x",
                        "platform_id": f"bulk-{run}-{i}",
                        "kind": "comment" if i % 3 else "post",
                        "author": {"platform_user_id": f"bulk-author-{i % 5000}"},
                        "text": TEXTS[i % len(TEXTS)],
                        "created_at": (start + timedelta(seconds=i)).isoformat(),
                    }
                )
                + b"\n"
            )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def through_endpoint(stack: BenchStack, path: Path) -> tuple[float, dict[str, Any]]:
    """Seconds to post the file to ``/ingest/ndjson``, and the endpoint's report."""
    started = time.monotonic()
    response = httpx.post(
        stack.stack.url("engagement", "/ingest/ndjson"),
        content=_chunks(path),
        headers={
            "authorization": f"Bearer {stack.token}",
            "content-type": "application/x-ndjson",
        },
        timeout=None,
    )
    elapsed = time.monotonic() - started
    response.raise_for_status()
    report = response.json()
    return elapsed, {k: report[k] for k in ("accepted", "duplicates", "updated", "ignored")}


async def through_copy(dsn: str, path: Path) -> float:
    """Seconds to parse the file and COPY its rows into a plain table."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_bulk_floor; CREATE TABLE bench_bulk_floor ("
            "channel text, platform_id text PRIMARY KEY, kind text, author text, text text, "
            "created_at timestamptz)"
        )
        started = time.monotonic()
        batch: list[tuple[Any, ...]] = []
        with path.open("rb") as f:
            for line in f:
                item = orjson.loads(line)
                batch.append(
                    (
                        item["channel"],
                        item["platform_id"],
                        item["kind"],
                        item["author"]["platform_user_id"],
                        item["text"],
                        datetime.fromisoformat(item["created_at"]),
                    )
                )
                if len(batch) == 10_000:
                    await conn.copy_records_to_table("bench_bulk_floor", records=batch)
                    batch.clear()
        if batch:
            await conn.copy_records_to_table("bench_bulk_floor", records=batch)
        elapsed = time.monotonic() - started
        await conn.execute("DROP TABLE bench_bulk_floor")
        return elapsed
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=0.0,
        help="seconds to wait for the queues to drain (default: 4 x the ingest, >= 600); "
        "past it the figures are recorded with the messages left",
    )
    args = parser.parse_args()
    with bench_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        ours: list[float] = []
        floors: list[float] = []
        drains: list[float] = []
        cpu: list[dict[str, float]] = []
        cpu_ingest: list[dict[str, float]] = []
        undrained = 0
        loaded_rss: dict[str, float] = {}
        report: dict[str, Any] = {}
        for _ in range(args.runs):
            path = Path(tmp) / "interactions.ndjson"
            write_ndjson(path, args.rows)
            meter = stack.cpu().start()
            ingesting = stack.cpu().start()
            seconds, report = through_endpoint(stack, path)
            ingesting.stop()
            loaded_rss = stack.rss()
            ours.append(seconds)
            answered = time.monotonic()
            timeout = args.drain_timeout or max(600.0, 4 * seconds)
            if wait_until(lambda: drained(stack.stack), timeout=timeout):
                drains.append(time.monotonic() - answered)
            else:  # a loaded machine: the figures so far still say something, marked as such
                undrained = queued_messages(stack.stack.vhost)
                print(f"not drained after {timeout:.0f}s: {undrained} messages queued", flush=True)
            meter.stop()
            cpu.append(meter.ms_per(args.rows))
            cpu_ingest.append(ingesting.ms_per(args.rows))
            floors.append(asyncio.run(through_copy(stack.stack.database_url("engagement"), path)))
            print(
                f"endpoint {seconds:.1f}s ({cpu_ingest[-1]}), "
                f"drained {drains[-1] if drains else float('nan'):.1f}s later, "
                f"{cpu[-1]['total']:.3f} ms CPU a row, COPY {floors[-1]:.1f}s",
                flush=True,
            )
        endpoint = summary([args.rows / s for s in ours])
        copy = summary([args.rows / s for s in floors])
        figures = {
            "rows": args.rows,
            "endpoint_seconds": summary(ours),
            "endpoint_rows_per_second": endpoint,
            "copy_seconds": summary(floors),
            "copy_rows_per_second": copy,
            "ratio_to_copy": ratio(endpoint["median"], copy["median"]),
            "drained_seconds_after_ingest": summary(drains) if drains else None,
            "messages_left_undrained": undrained,
            "cpu_ms_per_row": summary([c["total"] for c in cpu]),
            "cpu_ms_per_row_by_service": cpu[-1],
            "cpu_ms_per_row_while_ingesting": cpu_ingest[-1],
            "last_report": report,
            "memory_mib_when_answered": loaded_rss,
            "memory_mib_after": stack.rss(),
        }
    record("bulk", figures)


if __name__ == "__main__":
    main()
