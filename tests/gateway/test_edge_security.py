"""The gateway's edge against a hostile client (issue 15): limits before parsing, a token for
every operation, no schema hints, nesting that answers 400, revocation within seconds. Every
refusal is checked to happen before any subgraph is asked."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.main import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import ServerThread, Subgraph
from tests.support.signer import TestSigner
from tests.support.waiting import eventually

MAX_BODY = 100_000
MAX_QUERY = 20_000
CACHE_CHARS = 200_000


def _received(subgraphs: dict[str, Subgraph]) -> dict[str, int]:
    return {name: s.log.count for name, s in subgraphs.items() if s.log.count}


def _codes(body: Any) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


@pytest.fixture(scope="module")
def guarded(supergraph_path: Path, signer: TestSigner) -> Iterator[tuple[str, FastAPI]]:
    """A production gateway with small limits, and its app (to look at its caches)."""
    app = create_app(
        GatewaySettings(
            supergraph_path=supergraph_path,
            jwks_url=signer.jwks_url,
            environment="production",
            max_body_bytes=MAX_BODY,
            max_query_length=MAX_QUERY,
            cache_max_chars=CACHE_CHARS,
            rate_limit_capacity=1000,
            rate_limit_restore_rate=1,
            revocations_refresh_seconds=0.5,
        )
    )
    server = ServerThread(app).start()
    yield server.url, app
    server.stop()


@pytest.fixture
async def edge(
    guarded: tuple[str, FastAPI], signer: TestSigner
) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(base_url=guarded[0], timeout=30, headers=headers) as http:
        yield http


async def test_a_body_over_the_limit_is_answered_413_with_a_body_before_it_is_read(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    five_mb_comment = "{ __typename }\n#" + "x" * 5_000_000

    response = await edge.post("/graphql", json={"query": five_mb_comment})

    assert response.status_code == 413
    assert _codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
    assert _received(reset_logs) == {}


async def test_a_long_query_within_the_body_limit_is_refused_before_parsing(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    commented = "{ __typename }\n#" + "x" * (MAX_QUERY + 1)

    response = await edge.post("/graphql", json={"query": commented})

    assert response.status_code == 413
    assert _codes(response.json()) == ["QUERY_TOO_LARGE"]


async def test_distinct_documents_never_grow_the_caches_past_their_bound(
    edge: httpx.AsyncClient, guarded: tuple[str, FastAPI]
) -> None:
    gateway = guarded[1].state.gateway
    for n in range(30):
        query = f'{{ person(id: "p{n}") {{ name }} }}\n#' + "y" * 15_000
        response = await edge.post("/graphql", json={"query": query})
        assert response.status_code == 200

    assert 0 < gateway._documents.weight <= CACHE_CHARS
    assert gateway._plans.weight <= CACHE_CHARS


@pytest.mark.parametrize("query", ["{ __typename }", "{ peopel(first: 1) { id } }"])
async def test_every_operation_needs_a_token_before_it_is_parsed(
    guarded: tuple[str, FastAPI], query: str
) -> None:
    async with httpx.AsyncClient(base_url=guarded[0]) as anonymous:
        response = await anonymous.post("/graphql", json={"query": query})

    assert response.status_code == 401
    assert _codes(response.json()) == ["UNAUTHENTICATED"]
    assert "Did you mean" not in response.text


async def test_typename_alone_is_charged_so_the_rate_limit_applies(
    edge: httpx.AsyncClient,
) -> None:
    first = await edge.post("/graphql", json={"query": "{ __typename }"})
    second = await edge.post("/graphql", json={"query": "{ __typename }"})

    left = [
        r.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
        for r in (first, second)
    ]
    assert left[1] < left[0] <= 999


async def test_production_gives_no_field_suggestions_even_with_a_token(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.post("/graphql", json={"query": "{ peopel(first: 1) { id } }"})

    assert response.status_code == 400
    assert _codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in response.text
    assert "people" not in response.text


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_variables_and_bodies_nested_deep_answer_400_never_500(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    query = "query($v: String) { __typename }"
    deep_variables = {"query": query, "variables": {"v": _nested(300)}}
    very_deep_body = b'{"query": "{ __typename }", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"

    posted = await edge.post("/graphql", json=deep_variables)
    raw = await edge.post(
        "/graphql", content=very_deep_body, headers={"content-type": "application/json"}
    )
    got = await edge.get(
        "/graphql",
        params={"query": query, "variables": json.dumps({"v": _nested(300)})},
    )

    assert [posted.status_code, raw.status_code, got.status_code] == [400, 400, 400]
    assert _codes(posted.json()) == _codes(raw.json()) == _codes(got.json()) == ["BAD_REQUEST"]
    assert _received(reset_logs) == {}


async def test_a_document_nested_thousands_deep_answers_400(edge: httpx.AsyncClient) -> None:
    literal = "[" * 3000 + "]" * 3000
    response = await edge.post(
        "/graphql", json={"query": f'{{ person(id: "p1", x: {literal}) {{ name }} }}'}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"].startswith("GRAPHQL_")


async def test_a_revoked_token_stops_working_within_seconds(
    guarded: tuple[str, FastAPI], signer: TestSigner
) -> None:
    revoked, kept = signer.token(), signer.token()
    query = {"query": '{ person(id: "p1") { name } }'}

    async def post(token: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=guarded[0], timeout=30) as http:
            return await http.post(
                "/graphql", json=query, headers={"authorization": f"Bearer {token}"}
            )

    assert (await post(revoked)).status_code == 200
    signer.revoke(revoked)
    started = time.monotonic()

    response = await eventually(lambda: post(revoked), lambda r: r.status_code == 401, timeout=10)
    assert time.monotonic() - started < 5
    assert "revoked" in response.json()["errors"][0]["message"]
    assert (await post(kept)).status_code == 200
