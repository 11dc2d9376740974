"""Real servers for gateway tests: strawberry subgraphs and the gateway on free localhost ports."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import strawberry
import uvicorn
from strawberry.asgi import GraphQL
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope

from tests.gateway.subgraphs import people, points, posts

REPO = Path(__file__).resolve().parents[2]
FEDERATION_DIR = REPO / "infra" / "federation"
SUBGRAPH_SCHEMAS: dict[str, strawberry.federation.Schema] = {
    "people": people.schema,
    "posts": posts.schema,
    "points": points.schema,
}
# The committed composition of the test subgraphs (placeholder URLs), for I/O-free unit tests.
FIXTURE_SUPERGRAPH = Path(__file__).with_name("supergraph.graphql")
FIXTURE_URL = "http://subgraph.invalid/{name}/graphql"


def node_tooling_missing() -> str | None:
    """Why composition / the reference gateway cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (FEDERATION_DIR / "node_modules").is_dir():
        return "infra/federation/node_modules is missing (run: npm ci --prefix infra/federation)"
    return None


def subgraph_sdl(schema: strawberry.federation.Schema) -> str:
    """The SDL a subgraph serves on ``_service { sdl }``."""
    result = schema.execute_sync("{ _service { sdl } }")
    assert result.errors is None and result.data is not None
    sdl = result.data["_service"]["sdl"]
    assert isinstance(sdl, str)
    return sdl


def compose(urls: dict[str, str]) -> str:
    """Composes the test subgraphs with infra/federation/compose.mjs."""
    return compose_schemas(SUBGRAPH_SCHEMAS, urls)


def compose_schemas(schemas: dict[str, strawberry.federation.Schema], urls: dict[str, str]) -> str:
    """Composes strawberry subgraphs (name -> schema) served at ``urls`` with compose.mjs."""
    payload = {
        "subgraphs": [
            {"name": name, "url": urls[name], "sdl": subgraph_sdl(schema)}
            for name, schema in schemas.items()
        ]
    }
    completed = subprocess.run(
        ["node", str(FEDERATION_DIR / "compose.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"composition failed: {completed.stderr}")
    return completed.stdout


@dataclass
class RequestLog:
    """What one subgraph received: request count and the headers of each request."""

    count: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forgets what was received so far."""
        with self.lock:
            self.count = 0
            self.headers.clear()
            self.bodies.clear()


class CountingMiddleware:
    """Counts the POSTs a subgraph receives (the subgraph-side truth for request counts)."""

    def __init__(self, app: Any, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            chunks: list[bytes] = []

            async def recording_receive() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body"):
                        with self.log.lock:
                            self.log.count += 1
                            self.log.headers.append(headers)
                            self.log.bodies.append(b"".join(chunks))
                return message

            await self.app(scope, recording_receive, send)
            return
        await self.app(scope, receive, send)


class ServerThread:
    """A uvicorn server on a free 127.0.0.1 port, in a thread of its own."""

    def __init__(self, app: Any, port: int = 0, keep_alive_seconds: int = 5) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="auto",
            timeout_keep_alive=keep_alive_seconds,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        """Starts serving; returns once the port is bound."""
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        """The bound port."""
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stops serving and waits for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Subgraph:
    """A running test subgraph."""

    name: str
    server: ServerThread
    log: RequestLog

    @property
    def url(self) -> str:
        """Its GraphQL endpoint."""
        return f"{self.server.url}/graphql"


def start_subgraph(name: str) -> Subgraph:
    """Serves one test subgraph over real HTTP."""
    log = RequestLog()
    app = CountingMiddleware(GraphQL(SUBGRAPH_SCHEMAS[name], graphql_ide=None), log)
    return Subgraph(name, ServerThread(app).start(), log)


class ApolloGateway:
    """The reference ``@apollo/gateway`` (node subprocess) over a supergraph file."""

    def __init__(self, supergraph_path: Path, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [
                "node",
                str(FEDERATION_DIR / "apollo-gateway.mjs"),
                "--supergraph",
                str(supergraph_path),
                "--port",
                str(port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 60) -> str:
        """Waits for the "ready <url>" line; returns the GraphQL URL."""
        assert self.process.stdout is not None
        result: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            result.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0].startswith("ready "):
            self.stop()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"apollo gateway did not start: {result} {stderr[-2000:]}")
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        """Stops the node process (only the one this object started)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
