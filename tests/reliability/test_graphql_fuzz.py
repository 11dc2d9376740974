"""Drill: queries and mutations generated from the schema never make a 500.

What it does: hypothesis-graphql builds valid documents (every field, argument and input
type of the schema, with random values) from the schema each target publishes by
introspection, and sends them with a valid admin token to the gateway and to each subgraph
straight (15 documents each in ``make test``, 200 in ``make drills``). What it counts:
answers that are HTTP 5xx or carry ``INTERNAL_SERVER_ERROR``. Expected: none. Bad input
must come back as coded GraphQL errors; the abusive shapes (depth, aliases, batches, huge
lists) are refused by the gateway's edge (``tests/gateway/test_edge.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, build_client_schema, get_introspection_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token

TARGETS = ("gateway", "identity", "engagement", "rewards")

# Values for the schema's own scalars: sometimes well-formed, sometimes not.
_UUIDS = st.uuids().map(str) | st.text(max_size=40)
_SCALARS = {
    "DateTime": st.one_of(
        st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30)
    ).map(nodes.String),
    "Date": st.one_of(st.dates().map(str), st.text(max_size=12)).map(nodes.String),
    "JSON": st.one_of(st.text(max_size=30), st.from_regex(r'\{"[a-z]{1,5}": [0-9]{1,3}\}')).map(
        nodes.String
    ),
    "UUID": _UUIDS.map(nodes.String),
    "_Any": st.just(nodes.String("x")),
}


@pytest.fixture(scope="module")
def token(stack: devstack.Stack) -> str:
    """An admin token of a fresh tenant."""
    return asyncio.run(staff_token(stack, make_tenant(stack)))


def _schema(stack: devstack.Stack, target: str, token: str) -> GraphQLSchema:
    response = httpx.post(
        stack.url(target, "/graphql"),
        json={"query": get_introspection_query()},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return build_client_schema(response.json()["data"])


def _internal_errors(response: httpx.Response) -> list[Any]:
    if response.status_code >= 500:
        return [response.text[:500]]
    try:
        body = response.json()
    except ValueError:
        return [f"not JSON: {response.text[:200]}"]
    bodies = body if isinstance(body, list) else [body]
    return [
        error
        for one in bodies
        for error in (one.get("errors") or [])
        if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]


def _fuzz(stack: devstack.Stack, token: str, target: str, examples: int) -> None:
    schema = _schema(stack, target, token)
    scalars = {name: s for name, s in _SCALARS.items() if name in schema.type_map}
    operations = queries(schema, custom_scalars=scalars)
    if schema.mutation_type is not None:
        operations = operations | mutations(schema, custom_scalars=scalars)
    failures: list[tuple[str, Any]] = []
    sent = 0

    with httpx.Client(
        base_url=stack.url(target), headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as http:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operations)
        def send(document: object) -> None:
            nonlocal sent
            sent += 1
            response = http.post("/graphql", json={"query": str(document)})
            if found := _internal_errors(response):
                failures.append((str(document), found))

        send()
    print(f"\nfuzz {target}: sent={sent} internal_errors={len(failures)}")
    assert failures == []


# The first test of a session also waits for the stack to start (minutes on a loaded machine).
@pytest.mark.timeout(900)
@pytest.mark.parametrize("target", TARGETS)
def test_generated_operations_never_make_a_500(
    stack: devstack.Stack, token: str, target: str
) -> None:
    _fuzz(stack, token, target, examples=15)


@pytest.mark.drill
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("target", TARGETS)
def test_many_generated_operations_never_make_a_500(
    stack: devstack.Stack, token: str, target: str
) -> None:
    _fuzz(stack, token, target, examples=200)
