"""The gateway over real HTTP: batching, routing, headers, tracing, errors and the app contract."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.main import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import ServerThread, Subgraph, free_port
from tests.support.signer import TestSigner


def _received(subgraphs: dict[str, Subgraph]) -> dict[str, int]:
    return {name: s.log.count for name, s in subgraphs.items() if s.log.count}


def _bodies(subgraph: Subgraph) -> list[dict[str, Any]]:
    decoded = [orjson.loads(body) for body in subgraph.log.bodies]
    return [d for d in decoded if isinstance(d, dict)]


async def _post(client: httpx.AsyncClient, query: str, **extra: Any) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, **extra})


# -- batching and routing --------------------------------------------------------------------


async def test_list_of_50_customers_makes_one_entities_call_per_subgraph(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await _post(client, "{ people { id name points tier badges posts { title } } }")

    body = response.json()
    assert len(body["data"]["people"]) == 50
    assert _received(reset_logs) == {"people": 1, "points": 1, "posts": 1}
    assert body["extensions"]["subgraphRequests"] == {"people": 1, "points": 1, "posts": 1}
    points_call = _bodies(reset_logs["points"])[0]
    assert len(points_call["variables"]["representations"]) == 50
    # @requires: the representations carry the age people resolved in the root fetch.
    assert points_call["variables"]["representations"][0] == {
        "__typename": "Person",
        "id": "p1",
        "age": 19,
    }


async def test_entity_hops_two_levels_deep_make_one_call_per_boundary(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await _post(
        client, "{ people { name posts { reviewer { name points posts(limit: 1) { title } } } } }"
    )

    assert response.status_code == 200
    assert "errors" not in response.json()
    # people: the root fetch, then the reviewers' names two hops down (people > posts > people).
    # Reviewers' posts come with the reviewers from posts: no extra hop.
    assert _received(reset_logs) == {"people": 2, "posts": 1, "points": 1}


async def test_forwards_only_the_requested_fields_plus_join_keys(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    await _post(client, "{ leaderboard(top: 2) { name } }")

    (people_call,) = _bodies(reset_logs["people"])
    (points_call,) = _bodies(reset_logs["points"])
    assert "... on Person { name }" in people_call["query"]
    assert "email" not in people_call["query"] and "age" not in people_call["query"]
    assert points_call["query"] == "query { leaderboard(top: 2) { id __typename } }"


async def test_shareable_field_is_taken_from_the_subgraph_already_asked(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await _post(client, "{ leaderboard(top: 3) { level points } }")

    assert len(response.json()["data"]["leaderboard"]) == 3
    assert _received(reset_logs) == {"points": 1}


async def test_provided_field_needs_no_hop_but_other_fields_do(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    await _post(client, "{ latestPosts(first: 5) { author { name } } }")
    assert _received(reset_logs) == {"posts": 1}

    reset_logs["posts"].log.reset()
    await _post(client, "{ latestPosts(first: 5) { author { name email } } }")
    assert _received(reset_logs) == {"posts": 1, "people": 1}


async def test_alias_that_takes_a_key_name_does_not_break_the_join(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await _post(client, "{ leaderboard(top: 2) { id: name points } }")

    assert response.json()["data"] == {
        "leaderboard": [{"id": "Person 60", "points": 600}, {"id": "Person 59", "points": 590}]
    }


# -- headers and tracing ---------------------------------------------------------------------


async def test_the_verified_token_reaches_every_subgraph_and_nothing_else_does(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph], signer: TestSigner
) -> None:
    token = signer.token()
    await client.post(
        "/graphql",
        json={"query": "{ people(first: 2) { name points posts { title } } }"},
        headers={"authorization": f"Bearer {token}", "x-tenant-id": "acme", "x-other": "no"},
    )

    for subgraph in reset_logs.values():
        assert subgraph.log.headers, subgraph.name
        for headers in subgraph.log.headers:
            assert headers["authorization"] == f"Bearer {token}"
            assert "x-tenant-id" not in headers
            assert "x-other" not in headers


@pytest.mark.parametrize(
    "authorization,reason",
    [
        (None, "no bearer token"),
        ("Bearer not-a-jwt", "not a JWT"),
        ("expired", "expired"),
        ("wrong-audience", "audience"),
        ("foreign-key", "unknown key"),
    ],
)
async def test_the_gateway_refuses_a_bad_token_before_any_subgraph_is_asked(
    client: httpx.AsyncClient,
    reset_logs: dict[str, Subgraph],
    signer: TestSigner,
    authorization: str | None,
    reason: str,
) -> None:
    if authorization == "expired":
        authorization = f"Bearer {signer.token(exp=int(time.time()) - 60)}"
    elif authorization == "wrong-audience":
        authorization = f"Bearer {signer.token(aud='someone-else')}"
    elif authorization == "foreign-key":
        authorization = f"Bearer {TestSigner().token()}"
    headers = {"authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=str(client.base_url), headers=headers) as anonymous:
        response = await anonymous.post(
            "/graphql", json={"query": "{ people(first: 2) { name points } }"}
        )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert reason in error["message"]
    assert all(not subgraph.log.headers for subgraph in reset_logs.values())


async def test_introspection_and_typename_need_a_token(client: httpx.AsyncClient) -> None:
    queries = ("{ __schema { queryType { name } } }", "{ __typename }")
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        refused = [await anonymous.post("/graphql", json={"query": q}) for q in queries]
    answered = await client.post("/graphql", json={"query": queries[0]})

    assert [r.status_code for r in refused] == [401, 401]
    assert answered.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished while the test runs (the gateway app installed the SDK provider)."""
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


async def test_each_subgraph_fetch_has_a_span_and_sends_its_traceparent(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph], spans: InMemorySpanExporter
) -> None:
    await _post(client, "query Board { leaderboard(top: 2) { name points } }")

    fetch_spans = [
        s for s in spans.get_finished_spans() if s.attributes and "graphql.subgraph" in s.attributes
    ]
    assert sorted(str(s.attributes["graphql.subgraph"]) for s in fetch_spans if s.attributes) == [
        "people",
        "points",
    ]
    assert {
        str(s.attributes.get("graphql.operation.name")) for s in fetch_spans if s.attributes
    } == {"Board__points__0", "Board__people__1"}
    trace_ids = {format(s.context.trace_id, "032x") for s in fetch_spans if s.context}
    for subgraph in ("people", "points"):
        (headers,) = reset_logs[subgraph].log.headers
        assert headers["traceparent"].split("-")[1] in trace_ids


# -- failures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_with_points_down(supergraph_path: Path, signer: TestSigner) -> Iterator[str]:
    """A gateway whose "points" subgraph URL has nobody listening."""
    settings = GatewaySettings(
        supergraph_path=supergraph_path,
        jwks_url=signer.jwks_url,
        subgraph_urls={"points": f"http://127.0.0.1:{free_port()}/graphql"},
        subgraph_timeout_seconds=2,
    )
    server = ServerThread(create_app(settings)).start()
    yield server.url
    server.stop()


@pytest.fixture
async def down_client(
    gateway_with_points_down: str, signer: TestSigner
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway whose points subgraph is down."""
    headers = {"authorization": f"Bearer {signer.token()}"}
    async with httpx.AsyncClient(
        base_url=gateway_with_points_down, timeout=30, headers=headers
    ) as http:
        yield http


async def test_unavailable_subgraph_gives_partial_data_and_an_error(
    down_client: httpx.AsyncClient,
) -> None:
    response = await _post(down_client, "{ people(first: 2) { name badges } }")

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {
        "people": [{"name": "Person 1", "badges": None}, {"name": "Person 2", "badges": None}]
    }
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "SUBGRAPH_UNAVAILABLE", "serviceName": "points"}


async def test_readyz_names_the_subgraph_that_does_not_answer(
    down_client: httpx.AsyncClient,
) -> None:
    response = await down_client.get("/readyz")

    assert response.status_code == 503
    assert list(response.json()["failing_subgraphs"]) == ["points"]


async def test_readyz_is_ok_when_every_subgraph_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"", "text/plain")],
)
async def test_body_that_is_not_a_json_object_is_a_400_with_json_errors(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


_UNRESOLVED = "OPERATION_RESOLUTION_FAILURE"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"query": "query A { people { id } }", "operationName": "B"}, _UNRESOLVED),
        ({"query": "query A { people { id } } query B { people { id } }"}, _UNRESOLVED),
        ({"query": "{ people { id }"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ people { secret } }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query Q($n: Int!) { people(first: $n) { id } }"}, "BAD_USER_INPUT"),
        ({"query": "{ people { id } }", "variables": [1]}, "BAD_REQUEST"),
        ({"query": 42}, "BAD_REQUEST"),
        ({"variables": {}}, "BAD_REQUEST"),
    ],
)
async def test_bad_operations_are_400_with_a_code_and_no_fetch(
    client: httpx.AsyncClient,
    reset_logs: dict[str, Subgraph],
    payload: dict[str, Any],
    code: str,
) -> None:
    response = await client.post("/graphql", json=payload)

    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]
    assert _received(reset_logs) == {}


async def test_query_deeper_than_the_limit_is_rejected_before_any_fetch(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    # person(1) > posts(2) > author(3) > posts(4) ... : 16 levels with the leaf.
    inner = "id"
    for level in range(15):
        inner = f"{'posts' if level % 2 == 0 else 'author'} {{ {inner} }}"
    query = f'{{ person(id: "p1") {{ {inner} }} }}'
    response = await _post(client, query)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "depth 17" in error["message"]
    assert _received(reset_logs) == {}


# -- GET, GraphiQL, introspection ---------------------------------------------------------------


async def test_get_with_html_accept_serves_graphiql(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_get_query_is_executed(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query P($id: ID!) { person(id: $id) { name } }",
            "variables": '{"id": "p2"}',
        },
    )

    assert response.json() == {
        "data": {"person": {"name": "Person 2"}},
        "extensions": {"subgraphRequests": {"people": 1}},
    }


async def test_get_mutation_is_refused_with_405(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await client.get(
        "/graphql", params={"query": 'mutation { recordVisit(personId: "p1") { id } }'}
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _received(reset_logs) == {}


async def test_introspection_shows_the_api_schema_only(client: httpx.AsyncClient) -> None:
    response = await _post(
        client,
        '{ __type(name: "Person") { fields { name } } __schema { types { name } } }',
    )

    body = response.json()
    fields = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert {"id", "name", "points", "tier", "posts"} <= fields
    assert "internalScore" not in fields
    types = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert "Person" in types
    assert not {"join__Graph", "link__Purpose", "_Any", "_Entity"} & types


async def test_mutation_runs_then_entity_fields_are_joined(
    client: httpx.AsyncClient, reset_logs: dict[str, Subgraph]
) -> None:
    response = await _post(
        client,
        'mutation { a: recordVisit(personId: "p1") { name } '
        'b: recordVisit(personId: "p2") { points } }',
    )

    assert response.json()["data"] == {"a": {"name": "Person 1"}, "b": {"points": 20}}
    assert _received(reset_logs) == {"points": 1, "people": 1}
