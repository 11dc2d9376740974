"""The gateway over the real subgraphs: batching per entity boundary, and the same answers
as Apollo's reference gateway."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import staff_token
from tests.support.waiting import eventually

PAGE_OF_50 = """
query Page($first: Int!) {
  customers(first: $first) {
    edges { cursor node { id name rewards { balance } interactionCount } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.fixture(scope="module")
def tenant_with_50_customers(stack: devstack.Stack) -> str:
    """A tenant whose 50 customers all have their welcome points."""
    tenant_id = make_tenant(stack)

    async def fill() -> None:
        for i in range(50):
            result = await devstack.graphql(
                stack,
                REGISTER,
                {"input": {"name": f"Customer {i:02d}"}},
                token=await staff_token(stack, tenant_id),
            )
            assert "errors" not in result, result

        async def credited() -> list[object]:
            result = await devstack.graphql(
                stack, PAGE_OF_50, {"first": 50}, token=await staff_token(stack, tenant_id)
            )
            edges = result["data"]["customers"]["edges"]
            return [e["node"]["rewards"] for e in edges]

        await eventually(credited, lambda r: len(r) == 50 and None not in r, timeout=30)

    asyncio.run(fill())
    return tenant_id


async def test_a_page_of_50_customers_makes_one_request_per_subgraph(
    stack: devstack.Stack, tenant_with_50_customers: str
) -> None:
    result = await devstack.graphql(
        stack, PAGE_OF_50, {"first": 50}, token=await staff_token(stack, tenant_with_50_customers)
    )
    edges = result["data"]["customers"]["edges"]
    assert len(edges) == 50
    assert {e["node"]["rewards"]["balance"] for e in edges} == {100}
    assert {e["node"]["interactionCount"] for e in edges} == {0}
    assert result["extensions"]["subgraphRequests"] == {
        "identity": 1,
        "rewards": 1,
        "engagement": 1,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def apollo_gateway(
    stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """@apollo/gateway (Node) over the same running subgraphs, from the committed supergraph."""
    federation = devstack.REPO / "infra" / "federation"
    if shutil.which("node") is None or not (federation / "node_modules").exists():
        pytest.skip("node or infra/federation/node_modules missing (make test installs them)")
    supergraph = (devstack.REPO / "infra" / "supergraph.graphql").read_text()
    for name in devstack.SUBGRAPHS:
        default = f"http://127.0.0.1:{8000 + devstack.SUBGRAPHS.index(name) + 1}/graphql"
        supergraph = supergraph.replace(default, stack.url(name, "/graphql"))
    path: Path = tmp_path_factory.mktemp("apollo") / "supergraph.graphql"
    path.write_text(supergraph)
    port = _free_port()
    process = subprocess.Popen(
        [
            "node",
            str(federation / "apollo-gateway.mjs"),
            "--supergraph",
            str(path),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(url, json={"query": "{ __typename }"}, timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the Apollo gateway did not start") from None
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=10)


PARITY_QUERIES: list[tuple[str, dict[str, object]]] = [
    (PAGE_OF_50, {"first": 50}),
    (PAGE_OF_50, {"first": 3}),
    (
        "query($id: ID!) { customer(id: $id) { id name } }",
        {"id": "00000000-0000-4000-8000-000000000000"},
    ),
    (
        "{ customers(first: 5) { edges { node { __typename id ... on Customer { n: name } "
        "rewards { b: balance __typename } } } } }",
        {},
    ),
    (
        "query($skip: Boolean!) { customers(first: 4) { edges { node { id "
        "interactionCount @skip(if: $skip) name @include(if: $skip) } } } }",
        {"skip": True},
    ),
    (
        "fragment Points on Customer { rewards { balance } } "
        "{ a: customers(first: 2) { edges { node { ...Points } } } "
        "b: customers(first: 2) { pageInfo { hasNextPage } edges { cursor } } }",
        {},
    ),
]


@pytest.mark.parametrize("query,variables", PARITY_QUERIES)
async def test_our_gateway_answers_like_apollo_gateway(
    stack: devstack.Stack,
    tenant_with_50_customers: str,
    apollo_gateway: str,
    query: str,
    variables: dict[str, object],
) -> None:
    token = await staff_token(stack, tenant_with_50_customers)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as client:
        ours = await client.post(
            stack.url("gateway", "/graphql"),
            json={"query": query, "variables": variables},
            headers=headers,
        )
        theirs = await client.post(
            apollo_gateway, json={"query": query, "variables": variables}, headers=headers
        )
    ours_json, theirs_json = ours.json(), theirs.json()
    ours_json.pop("extensions", None)
    theirs_json.pop("extensions", None)
    assert ours_json == theirs_json
    assert "errors" not in ours_json
