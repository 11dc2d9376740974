"""The load generator: a process of its own that sends GraphQL operations and times them.

``python bench/loadgen.py --url URL --payloads FILE --concurrency 20 --seconds 5 --token T``
sends the payloads of FILE (a JSON list of ``{query, variables}``, taken in turn, so the
variables change from request to request) from ``concurrency`` workers on one aiohttp
session for ``seconds``, and prints one JSON line: requests, errors, req/s, p50 and p99 in
ms, and the mean subgraph requests per operation when the gateway reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson


async def run(
    url: str, payloads: list[dict[str, Any]], concurrency: int, seconds: float, token: str
) -> dict[str, Any]:
    """Load ``url`` for ``seconds``; the figures of the run."""
    bodies = itertools.cycle([orjson.dumps(p) for p in payloads])
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    latencies: list[float] = []
    subgraph_requests: list[int] = []
    errors = 0
    first_error: list[str] = []
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with session.post(url, data=next(bodies), headers=headers) as response:
                    raw = await response.read()
                latencies.append(time.perf_counter() - started)
                body = orjson.loads(raw) if raw else {}
                if response.status != 200 or body.get("errors") or not body.get("data"):
                    errors += 1
                    if not first_error:
                        first_error.append(f"{response.status} {raw[:300]!r}")
                counts = (body.get("extensions") or {}).get("subgraphRequests")
                if isinstance(counts, dict):
                    subgraph_requests.append(sum(int(v) for v in counts.values()))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started

    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "errors": errors,
        "rps": round(count / elapsed, 1),
        "p50_ms": round(1000 * latencies[count // 2], 2) if count else 0.0,
        "p99_ms": round(1000 * latencies[min(count - 1, int(count * 0.99))], 2) if count else 0.0,
        "first_error": first_error[0] if first_error else None,
        "subgraph_requests_per_op": (
            round(statistics.mean(subgraph_requests), 2) if subgraph_requests else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--payloads", required=True, type=Path)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    payloads = orjson.loads(args.payloads.read_bytes())
    figures = asyncio.run(run(args.url, payloads, args.concurrency, args.seconds, args.token))
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
