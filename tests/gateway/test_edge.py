"""The gateway's public edge over real HTTP: limits, cost, rate limits, persisted operations and
production mode. Every refusal is checked to happen before any subgraph is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.main import create_app
from gateway.persisted import sha256_hex
from gateway.ratelimit import TokenBucketLimiter
from gateway.settings import GatewaySettings
from tests.gateway.harness import ServerThread, Subgraph
from tests.support.signer import TestSigner
from tests.support.waiting import eventually

MAX_COST = 100
CAPACITY = 100
RESTORE_RATE = 10.0


def _received(subgraphs: dict[str, Subgraph]) -> dict[str, int]:
    return {name: s.log.count for name, s in subgraphs.items() if s.log.count}


def _codes(body: Any) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def _serve(settings: GatewaySettings) -> ServerThread:
    return ServerThread(create_app(settings)).start()


@pytest.fixture(scope="module")
def edge_url(supergraph_path: Path, signer: TestSigner) -> Iterator[str]:
    """A gateway with small cost limits: max cost 100, buckets of 100 points, 10 points/s."""
    server = _serve(
        GatewaySettings(
            supergraph_path=supergraph_path,
            jwks_url=signer.jwks_url,
            max_cost=MAX_COST,
            rate_limit_enabled=True,
            rate_limit_capacity=CAPACITY,
            rate_limit_restore_rate=RESTORE_RATE,
        )
    )
    yield server.url
    server.stop()


@pytest.fixture
async def edge(edge_url: str, signer: TestSigner) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the edge gateway with a token of its own (so a bucket of its own)."""
    headers = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(base_url=edge_url, timeout=30, headers=headers) as http:
        yield http


# -- limits -------------------------------------------------------------------------------------


def _deep_query(levels: int) -> str:
    inner = "id"
    for level in range(levels - 2):
        inner = f"{'posts' if level % 2 == 0 else 'author'} {{ {inner} }}"
    return f'{{ person(id: "p1") {{ {inner} }} }}'


ABUSIVE = {
    "depth 20": (_deep_query(20), "GRAPHQL_VALIDATION_FAILED"),
    "1,000 aliases": (
        "{ " + " ".join(f"a{i}: people {{ id }}" for i in range(1000)) + " }",
        "TOO_MANY_ALIASES",
    ),
    "aliases multiplied by fragment spreads": (
        "{ ...F ...F ...F ...F } fragment F on Query { "
        + " ".join(f"a{i}: people {{ id }}" for i in range(10))
        + " }",
        "TOO_MANY_ALIASES",
    ),
    "25 root fields": (
        "{ " + " ".join(f'a{i}: person(id: "p{i + 1}") {{ id }}' for i in range(25)) + " }",
        "TOO_MANY_ROOT_FIELDS",
    ),
    "first: 100000": ("{ people(first: 100000) { name } }", "BAD_USER_INPUT"),
    "connection without first/last": (
        "{ postsConnection { edges { node { title } } } }",
        "BAD_USER_INPUT",
    ),
    "cost over the maximum": ("{ people(first: 100) { posts { title } } }", "QUERY_TOO_COMPLEX"),
    "over the token limit": ("{ " + "a " * 10_001 + "}", "GRAPHQL_PARSE_FAILED"),
}


@pytest.mark.parametrize(("query", "code"), ABUSIVE.values(), ids=ABUSIVE.keys())
async def test_abusive_documents_are_refused_before_any_subgraph_is_asked(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph], query: str, code: str
) -> None:
    response = await edge.post("/graphql", json={"query": query})

    assert response.status_code == 400
    assert _codes(response.json()) == [code]
    assert _received(reset_logs) == {}


async def test_list_size_from_a_variable_is_checked_and_the_error_names_the_field(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await edge.post(
        "/graphql",
        json={
            "query": "query Q($n: Int) { feed: postsConnection(first: $n) { totalCount } }",
            "variables": {"n": 500},
        },
    )

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    assert error["path"] == ["feed"]
    assert "first: 500" in error["message"] and "100" in error["message"]
    assert _received(reset_logs) == {}


async def test_a_batch_of_100_operations_is_refused_whole(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    batch = [{"query": "{ people(first: 1) { name } }"}] * 100
    response = await edge.post("/graphql", json=batch)

    assert response.status_code == 400
    assert _codes(response.json()) == ["BATCH_TOO_LARGE"]
    assert _received(reset_logs) == {}


async def test_a_small_batch_answers_each_operation_in_order(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await edge.post(
        "/graphql",
        json=[
            {"query": '{ person(id: "p1") { name } }'},
            {"query": "query P($id: ID!) { person(id: $id) { name } }", "variables": {"id": "p2"}},
        ],
    )

    assert response.status_code == 200
    first, second = response.json()
    assert first["data"] == {"person": {"name": "Person 1"}}
    assert second["data"] == {"person": {"name": "Person 2"}}
    assert _received(reset_logs) == {"people": 2}


async def test_a_batch_with_an_item_that_is_not_an_object_is_refused(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await edge.post("/graphql", json=[{"query": "{ people { id } }"}, 3])

    assert response.status_code == 400
    assert _codes(response.json()) == ["BAD_REQUEST"]
    assert _received(reset_logs) == {}


# -- cost and rate limits -----------------------------------------------------------------------

# postsConnection(first: 3): 1 + 3 x (edges 1 + node 1 + author 1) = 10;
# people(first: 5): 1 + 5 x (posts 1) = 6; scalars cost nothing. Total 16.
KNOWN_QUERY = """{
  postsConnection(first: 3) { totalCount edges { cursor node { title author { name } } } }
  people(first: 5) { name posts { title } }
}"""


async def test_cost_is_reported_as_shopify_does_and_matches_the_hand_computed_figure(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.post("/graphql", json={"query": KNOWN_QUERY})

    assert response.status_code == 200
    body = response.json()
    assert len(body["data"]["postsConnection"]["edges"]) == 3
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": 16,
        "throttleStatus": {
            "maximumAvailable": CAPACITY,
            "currentlyAvailable": CAPACITY - 16,
            "restoreRate": RESTORE_RATE,
        },
    }


async def test_skipped_fields_cost_nothing(edge: httpx.AsyncClient) -> None:
    response = await edge.post(
        "/graphql",
        json={
            "query": "query Q($all: Boolean!) { people(first: 5) { name "
            "posts @include(if: $all) { title } } }",
            "variables": {"all": False},
        },
    )

    assert response.json()["extensions"]["cost"]["requestedQueryCost"] == 1


async def test_a_refused_cost_reports_the_requested_cost(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    query = "{ people(first: 100) { id posts { id } } }"
    response = await edge.post("/graphql", json={"query": query})

    assert response.status_code == 400
    body = response.json()
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["extensions"]["cost"] == {"requestedQueryCost": 101}
    assert _received(reset_logs) == {}


# 1 + 59 x (posts 1) = 60 points: a full bucket of 100 pays for one, not two in a row.
EXPENSIVE = "{ people(first: 59) { posts { title } } }"


async def test_rate_limit_refuses_with_429_and_retry_after_then_restores(
    edge: httpx.AsyncClient, edge_url: str, signer: TestSigner, reset_logs: dict[str, Subgraph]
) -> None:
    first = await edge.post("/graphql", json={"query": EXPENSIVE})
    assert first.status_code == 200
    assert first.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 40
    reset_logs["people"].log.reset()
    reset_logs["posts"].log.reset()

    second = await edge.post("/graphql", json={"query": EXPENSIVE})

    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    body = second.json()
    assert _codes(body) == ["RATE_LIMITED"]
    assert body["extensions"]["cost"]["requestedQueryCost"] == 60
    assert _received(reset_logs) == {}

    # Another client (another subject) has a bucket of its own.
    other = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(base_url=edge_url, headers=other) as someone_else:
        assert (await someone_else.post("/graphql", json={"query": EXPENSIVE})).status_code == 200

    async def again() -> httpx.Response:
        return await edge.post("/graphql", json={"query": EXPENSIVE})

    restored = await eventually(again, lambda r: r.status_code == 200, timeout=10)
    assert restored.json()["extensions"]["cost"]["requestedQueryCost"] == 60


def test_token_bucket_takes_refuses_and_refills_by_the_clock() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(100, 10, clock=lambda: now[0])

    assert limiter.take(("t", "a"), 70).allowed
    refused = limiter.take(("t", "a"), 70)
    assert not refused.allowed
    assert (refused.currently_available, refused.retry_after) == (30, 4)
    assert limiter.take(("t", "b"), 70).allowed
    now[0] = 4.0
    assert limiter.take(("t", "a"), 70).allowed
    now[0] = 1000.0
    assert limiter.take(("t", "a"), 0).currently_available == 100


# -- automatic persisted queries ----------------------------------------------------------------


def _apq(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def test_apq_round_trip_not_found_then_registered_then_by_hash_over_post_and_get(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    query = 'query ApqRoundTrip { person(id: "p4") { name } }'
    sha256 = sha256_hex(query)

    unknown = await edge.post("/graphql", json={"extensions": _apq(sha256)})
    assert unknown.status_code == 400
    assert _codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert _received(reset_logs) == {}

    registered = await edge.post("/graphql", json={"query": query, "extensions": _apq(sha256)})
    assert registered.json()["data"] == {"person": {"name": "Person 4"}}

    by_hash = await edge.post("/graphql", json={"extensions": _apq(sha256)})
    assert by_hash.json()["data"] == {"person": {"name": "Person 4"}}

    over_get = await edge.get(
        "/graphql", params={"extensions": orjson.dumps(_apq(sha256)).decode()}
    )
    assert over_get.status_code == 200
    assert over_get.json()["data"] == {"person": {"name": "Person 4"}}


async def test_apq_hash_that_does_not_match_the_query_is_refused_and_not_stored(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    query = '{ person(id: "p5") { name } }'
    wrong = sha256_hex("something else")

    response = await edge.post("/graphql", json={"query": query, "extensions": _apq(wrong)})

    assert response.status_code == 400
    assert _codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    later = await edge.post("/graphql", json={"extensions": _apq(wrong)})
    assert _codes(later.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert _received(reset_logs) == {}


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}},
        {"persistedQuery": "yes"},
        ["not", "an", "object"],
    ],
)
async def test_malformed_persisted_query_extensions_are_bad_requests(
    edge: httpx.AsyncClient, reset_logs: dict[str, Subgraph], extensions: Any
) -> None:
    response = await edge.post(
        "/graphql", json={"query": "{ people { id } }", "extensions": extensions}
    )

    assert response.status_code == 400
    assert _codes(response.json()) == ["BAD_REQUEST"]
    assert _received(reset_logs) == {}


# -- safelist -----------------------------------------------------------------------------------

SAFE_QUERY = 'query Safe { person(id: "p6") { name } }'


@pytest.fixture(scope="module")
def safelist_url(
    supergraph_path: Path, signer: TestSigner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway that runs only the operations of its manifest."""
    manifest = tmp_path_factory.mktemp("persisted") / "operations.json"
    manifest.write_bytes(orjson.dumps({sha256_hex(SAFE_QUERY): SAFE_QUERY}))
    server = _serve(
        GatewaySettings(
            supergraph_path=supergraph_path,
            jwks_url=signer.jwks_url,
            persisted_operations_path=manifest,
            safelist_only=True,
        )
    )
    yield server.url
    server.stop()


@pytest.fixture
async def safelisted(safelist_url: str, signer: TestSigner) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the safelist gateway."""
    headers = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(base_url=safelist_url, timeout=30, headers=headers) as http:
        yield http


async def test_safelist_runs_known_operations_by_hash_or_by_exact_text(
    safelisted: httpx.AsyncClient,
) -> None:
    expected = {"person": {"name": "Person 6"}}

    by_hash = await safelisted.post("/graphql", json={"extensions": _apq(sha256_hex(SAFE_QUERY))})
    by_text = await safelisted.post("/graphql", json={"query": SAFE_QUERY})

    assert by_hash.json()["data"] == expected
    assert by_text.json()["data"] == expected


async def test_safelist_refuses_every_other_operation_and_registers_nothing(
    safelisted: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    other = '{ person(id: "p6") { name email } }'

    by_text = await safelisted.post("/graphql", json={"query": other})
    registering = await safelisted.post(
        "/graphql", json={"query": other, "extensions": _apq(sha256_hex(other))}
    )
    by_hash = await safelisted.post("/graphql", json={"extensions": _apq(sha256_hex(other))})

    assert _codes(by_text.json()) == ["PERSISTED_QUERY_REQUIRED"]
    assert _codes(registering.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert _codes(by_hash.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert {by_text.status_code, registering.status_code, by_hash.status_code} == {400}
    assert _received(reset_logs) == {}


def test_a_manifest_entry_whose_key_is_not_its_hash_fails_at_start(
    supergraph_path: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "operations.json"
    manifest.write_bytes(orjson.dumps({sha256_hex("{ a }"): "{ b }"}))

    with pytest.raises(ValueError, match="not the SHA-256"):
        create_app(
            GatewaySettings(supergraph_path=supergraph_path, persisted_operations_path=manifest)
        )


# -- production mode ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def production_url(supergraph_path: Path, signer: TestSigner) -> Iterator[str]:
    """A gateway with ``GATEWAY_ENVIRONMENT=production``."""
    server = _serve(
        GatewaySettings(
            supergraph_path=supergraph_path, jwks_url=signer.jwks_url, environment="production"
        )
    )
    yield server.url
    server.stop()


@pytest.fixture
async def production(production_url: str, signer: TestSigner) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the production gateway."""
    headers = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(base_url=production_url, timeout=30, headers=headers) as http:
        yield http


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { queryType { name } } }",
        '{ __type(name: "Person") { name } }',
        "query { people(first: 1) { id } ...Sneaky } fragment Sneaky on Query { __schema { types "
        "{ name } } }",
    ],
)
async def test_production_refuses_introspection(
    production: httpx.AsyncClient, reset_logs: dict[str, Subgraph], query: str
) -> None:
    response = await production.post("/graphql", json={"query": query})

    assert response.status_code == 400
    assert _codes(response.json()) == ["INTROSPECTION_DISABLED"]
    assert _received(reset_logs) == {}


async def test_production_still_answers_typename_and_serves_no_graphiql(
    production: httpx.AsyncClient,
) -> None:
    typename = await production.post("/graphql", json={"query": "{ __typename }"})
    graphiql = await production.get("/graphql", headers={"accept": "text/html"})

    assert typename.json()["data"] == {"__typename": "Query"}
    assert graphiql.status_code == 400
    assert "graphiql" not in graphiql.text.lower()


async def test_production_masks_subgraph_errors_to_message_path_and_code(
    production: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    query = '{ person(id: "p3") { name badges } }'

    masked = (await production.post("/graphql", json={"query": query})).json()
    detailed = (await client.post("/graphql", json={"query": query})).json()

    assert masked["data"] == detailed["data"] == {"person": {"name": "Person 3", "badges": None}}
    assert "throttleStatus" in masked["extensions"]["cost"]  # rate limited by default
    (full,) = detailed["errors"]
    assert full["extensions"]["serviceName"] == "points"
    (error,) = masked["errors"]
    assert error == {
        "message": full["message"],
        "path": ["person", "badges"],
        "extensions": {"code": full["extensions"]["code"]},
    }


def test_production_defaults_turn_the_edge_on_and_development_keeps_tools() -> None:
    development = GatewaySettings()
    production = GatewaySettings(environment="production")

    assert (development.introspection_enabled, development.graphiql_enabled) == (True, True)
    assert not development.rate_limited
    assert (production.introspection_enabled, production.graphiql_enabled) == (False, False)
    assert production.rate_limited
    with pytest.raises(ValueError, match="persisted_operations_path"):
        GatewaySettings(safelist_only=True)
