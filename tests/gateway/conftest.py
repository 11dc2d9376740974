"""Fixtures of the gateway tests: real subgraphs, a composed supergraph, the gateway over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import (
    ServerThread,
    Subgraph,
    compose,
    node_tooling_missing,
    start_subgraph,
)
from tests.support.signer import TestSigner


@pytest.fixture(scope="session")
def subgraphs() -> Iterator[dict[str, Subgraph]]:
    """The three test subgraphs, served over real HTTP on free ports."""
    started = {name: start_subgraph(name) for name in ("people", "posts", "points")}
    yield started
    for subgraph in started.values():
        subgraph.server.stop()


@pytest.fixture(scope="session")
def supergraph_path(
    subgraphs: dict[str, Subgraph], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The supergraph composed (with node) from the running test subgraphs."""
    missing = node_tooling_missing()
    if missing:
        pytest.skip(f"federation composition needs node tooling: {missing}")
    sdl = compose({name: subgraph.url for name, subgraph in subgraphs.items()})
    path = tmp_path_factory.mktemp("supergraph") / "supergraph.graphql"
    path.write_text(sdl, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def signer() -> Iterator[TestSigner]:
    """The suite's own signing key, its JWKS served over HTTP as identity would serve it."""
    signer = TestSigner()
    server = ServerThread(signer.app()).start()
    signer.jwks_url = f"{server.url}/.well-known/jwks.json"
    yield signer
    server.stop()


@pytest.fixture(scope="session")
def gateway_url(supergraph_path: Path, signer: TestSigner) -> Iterator[str]:
    """Our gateway over the test supergraph, served by uvicorn, debug extensions on, no cost."""
    settings = GatewaySettings(
        supergraph_path=supergraph_path,
        debug_extensions=True,
        max_depth=15,
        jwks_url=signer.jwks_url,
        # Bodies compared as they are (and with Apollo's): the cost report is tested elsewhere.
        report_cost=False,
    )
    server = ServerThread(create_app(settings)).start()
    yield server.url
    server.stop()


@pytest.fixture
async def client(gateway_url: str, signer: TestSigner) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the gateway, with a valid bearer token."""
    headers = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30, headers=headers) as http:
        yield http


@pytest.fixture
def reset_logs(subgraphs: dict[str, Subgraph]) -> dict[str, Subgraph]:
    """The subgraphs, with their request logs emptied."""
    for subgraph in subgraphs.values():
        subgraph.log.reset()
    return subgraphs
