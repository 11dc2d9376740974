"""Subgraph client benchmark: httpx vs aiohttp, client CPU per request against a local server.

The gateway's hot path is many small JSON POSTs to subgraphs over keep-alive connections, so
that is what is measured: N sequential POSTs (plus a concurrent burst) of a GraphQL-sized
body to a tiny server in a separate process on 127.0.0.1, with each client as the gateway
uses it (one pooled session). CPU is this process's CPU only, so the server does not count.

    .venv/bin/python bench/subgraph_client.py [--requests 2000] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import orjson
from aiohttp import web

_ENTITIES = [{"__typename": "Person", "id": f"p{i}", "points": i} for i in range(50)]
_RESPONSE = orjson.dumps({"data": {"_entities": _ENTITIES}})
_REQUEST = {
    "query": "query($representations: [_Any!]!) { _entities(representations: $representations)"
    " { ... on Person { points } } }",
    "variables": {"representations": [{"__typename": "Person", "id": f"p{i}"} for i in range(50)]},
}
_HEADERS = {"content-type": "application/json", "authorization": "Bearer bench"}


def _serve(port: int) -> None:
    async def graphql(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=_RESPONSE, content_type="application/json")

    app = web.Application()
    app.router.add_post("/graphql", graphql)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_for(url: str, deadline_seconds: float = 15) -> None:
    deadline = time.monotonic() + deadline_seconds
    async with httpx.AsyncClient() as client:
        while True:
            try:
                await client.post(url, content=b"{}")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Result:
    """One client's figures."""

    name: str
    requests: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def cpu_us_per_request(self) -> float:
        """Client CPU microseconds per request."""
        return self.cpu_seconds / self.requests * 1e6

    @property
    def requests_per_second(self) -> float:
        """Throughput."""
        return self.requests / self.wall_seconds


async def _measure(
    name: str, send: Callable[[], Awaitable[Any]], requests: int, concurrency: int
) -> Result:
    for _ in range(min(50, requests)):
        await send()  # warm the pool and the code paths
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests // 2):
        await send()
    remaining = requests - requests // 2
    for _ in range(remaining // concurrency):
        await asyncio.gather(*(send() for _ in range(concurrency)))
    done = requests // 2 + (remaining // concurrency) * concurrency
    return Result(name, done, time.process_time() - cpu, time.perf_counter() - wall)


async def _with_aiohttp(url: str, requests: int, concurrency: int) -> Result:
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> Any:
            async with session.post(url, data=orjson.dumps(_REQUEST), headers=_HEADERS) as r:
                return orjson.loads(await r.read())

        return await _measure("aiohttp", send, requests, concurrency)


async def _with_httpx(url: str, requests: int, concurrency: int) -> Result:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> Any:
            response = await client.post(url, content=orjson.dumps(_REQUEST), headers=_HEADERS)
            return orjson.loads(response.content)

        return await _measure("httpx", send, requests, concurrency)


async def run(requests: int, concurrency: int) -> tuple[Result, Result]:
    """Measures both clients against a server in a child process; returns (httpx, aiohttp)."""
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        await _wait_for(url)
        httpx_result = await _with_httpx(url, requests, concurrency)
        aiohttp_result = await _with_aiohttp(url, requests, concurrency)
    finally:
        server.terminate()
        server.join(timeout=10)
    return httpx_result, aiohttp_result


def main() -> None:
    """Prints both clients' CPU per request and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="requests per client (max 100k)")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    requests = max(100, min(args.requests, 100_000))
    concurrency = max(1, min(args.concurrency, 100))
    httpx_result, aiohttp_result = asyncio.run(run(requests, concurrency))
    for result in (httpx_result, aiohttp_result):
        print(
            f"{result.name:8} {result.requests} requests: "
            f"{result.cpu_us_per_request:8.1f} us CPU/request, "
            f"{result.requests_per_second:8.0f} requests/s"
        )
    ratio = httpx_result.cpu_us_per_request / aiohttp_result.cpu_us_per_request
    print(f"ratio    httpx/aiohttp CPU per request: {ratio:.2f}x")


if __name__ == "__main__":
    main()
