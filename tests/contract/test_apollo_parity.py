"""Our gateway answers exactly as Apollo's reference gateway over the same subgraphs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.gateway.harness import Subgraph
from tests.support.signer import TestSigner

PARITY_CASES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "aliases_and_named_fragments": (
        """
        query Aliases {
          first: person(id: "p1") { ...Basic }
          second: person(id: "p2") { ...Basic fullName: name tier }
        }
        fragment Basic on Person { id name email points }
        """,
        None,
    ),
    "variables_with_defaults": (
        """
        query ByVariables($id: ID!, $limit: Int, $first: Int = 2) {
          person(id: $id) { name posts(limit: $limit) { title } }
          people(first: $first) { id }
        }
        """,
        {"id": "p5", "limit": 1},
    ),
    "entity_hops_two_levels_deep": (
        """
        {
          people(first: 6) {
            name
            posts {
              title
              reviewer { name points tier posts(limit: 1) { title author { email } } }
            }
          }
        }
        """,
        None,
    ),
    "list_of_fifty_across_three_subgraphs": (
        "{ people { id name level points badges posts { id title } } }",
        None,
    ),
    "nulls_in_data": (
        "{ people(first: 15) { id email posts { reviewer { name } media { url } } } }",
        None,
    ),
    "entity_field_error_is_mapped_to_client_path": (
        '{ people(first: 8) { id badges } person(id: "p3") { name badges points } }',
        None,
    ),
    "non_null_error_nulls_the_nearest_nullable_parent": (
        '{ person(id: "p2") { name posts { id rating } } }',
        None,
    ),
    "root_non_null_error_nulls_data": (
        "{ latestPosts(first: 6) { id rating } }",
        None,
    ),
    "typename_everywhere": (
        """
        {
          __typename
          people(first: 2) { __typename id kind: __typename }
          featuredPost { __typename id }
          gallery { __typename }
        }
        """,
        None,
    ),
    "interface_fragments": (
        """
        {
          gallery { __typename url ... on Image { width } ... on Video { seconds } }
          latestPosts(first: 6) { id media { url ... on Video { seconds } } }
        }
        """,
        None,
    ),
    "union_members_from_other_subgraphs": (
        """
        {
          search(term: "by 1") {
            __typename
            ... on Post { title author { email points } }
            ... on Person { name points tier }
          }
        }
        """,
        None,
    ),
    "skip_and_include_with_variables": (
        """
        query Conditional($withPosts: Boolean!, $skipEmail: Boolean!) {
          people(first: 3) {
            name
            email @skip(if: $skipEmail)
            posts @include(if: $withPosts) { title }
            points @include(if: $withPosts)
          }
        }
        """,
        {"withPosts": True, "skipEmail": True},
    ),
    "skip_and_include_other_values": (
        """
        query Conditional($withPosts: Boolean!, $skipEmail: Boolean!) {
          people(first: 3) {
            name
            email @skip(if: $skipEmail)
            posts @include(if: $withPosts) { title }
            points @include(if: $withPosts)
          }
        }
        """,
        {"withPosts": False, "skipEmail": False},
    ),
    "compound_key_entity": (
        "{ accounts { tenant handle displayName postCount owner { name points } } }",
        None,
    ),
    "provides_and_requires": (
        """
        {
          latestPosts(first: 4) { author { name } reviewer { name email } }
          leaderboard(top: 3) { id name tier level }
        }
        """,
        None,
    ),
    "unresolvable_key_reference": (
        "{ featuredPost { id title author { name points } } }",
        None,
    ),
    "shareable_field_from_either_side": (
        "{ leaderboard(top: 4) { level points } people(first: 3) { level name } }",
        None,
    ),
    "nested_inline_and_spread_fragments": (
        """
        query Nested { person(id: "p5") { ... { name } ...P } }
        fragment P on Person { ... on Person { points posts(limit: 1) { ...T } } }
        fragment T on Post { title media { ... on Image { width } } }
        """,
        None,
    ),
    "mutation_then_entity_fields": (
        'mutation Visit { recordVisit(personId: "p4") { id name points } }',
        None,
    ),
    "alias_taking_a_key_name": (
        "{ leaderboard(top: 2) { id: name points key: id } }",
        None,
    ),
    "introspection_mixed_with_data": (
        '{ __typename __type(name: "Media") { name possibleTypes { name } } gallery { url } }',
        None,
    ),
    "same_entity_reached_twice_in_one_list": (
        '{ search(term: "by 1") { ... on Person { id name badges } } }',
        None,
    ),
    "error_in_an_entity_reached_three_times": (
        '{ search(term: "by 2") { __typename ... on Person { id posts { id rating } } } }',
        None,
    ),
    "mutation_error": (
        'mutation { recordVisit(personId: "nobody") { id } }',
        None,
    ),
}


def _normalized(body: dict[str, Any]) -> dict[str, Any]:
    """The response with errors in a stable order and our debug counts removed."""
    result = dict(body)
    errors = result.get("errors")
    if errors is not None:
        result["errors"] = sorted(errors, key=lambda e: json.dumps(e, sort_keys=True))
    extensions = dict(result.get("extensions") or {})
    extensions.pop("subgraphRequests", None)
    if extensions:
        result["extensions"] = extensions
    else:
        result.pop("extensions", None)
    return result


async def _ask(
    url: str, query: str, variables: dict[str, Any] | None, token: str
) -> tuple[int, Any]:
    # Our gateway verifies the token against the suite's JWKS; both gateways forward it.
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            url,
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"},
        )
    return response.status_code, response.json()


@pytest.mark.parametrize("case", list(PARITY_CASES))
async def test_answers_equal_apollo_gateway(
    case: str,
    gateway_url: str,
    apollo_url: str,
    subgraphs: dict[str, Subgraph],
    signer: TestSigner,
) -> None:
    query, variables = PARITY_CASES[case]
    token = signer.token()
    apollo_status, apollo_body = await _ask(apollo_url, query, variables, token)
    for subgraph in subgraphs.values():
        subgraph.log.reset()
    our_status, our_body = await _ask(f"{gateway_url}/graphql", query, variables, token)

    assert our_status == apollo_status
    assert _normalized(our_body) == _normalized(apollo_body)
    assert "data" in our_body
    # The debug counts are what the subgraphs really received.
    received = {n: s.log.count for n, s in subgraphs.items() if s.log.count}
    assert our_body["extensions"]["subgraphRequests"] == received


@pytest.mark.parametrize(
    ("query", "variables", "same_message"),
    [
        ("{ people { id ", None, True),
        ("{ people { nope } }", None, True),
        ("{ people { internalScore } }", None, True),
        # graphql-core words variable coercion errors differently from graphql-js.
        ("query Q($n: Int!) { people(first: $n) { id } }", {"n": "many"}, False),
    ],
)
async def test_bad_requests_get_apollo_status_and_code(
    query: str,
    variables: dict[str, Any] | None,
    same_message: bool,
    gateway_url: str,
    apollo_url: str,
    signer: TestSigner,
) -> None:
    token = signer.token()
    apollo_status, apollo_body = await _ask(apollo_url, query, variables, token)
    our_status, our_body = await _ask(f"{gateway_url}/graphql", query, variables, token)

    assert our_status == apollo_status == 400
    codes = [e["extensions"]["code"] for e in our_body["errors"]]
    assert codes == [e["extensions"]["code"] for e in apollo_body["errors"]]
    if same_message:
        # graphql-core quotes names with ' where graphql-js uses ".
        assert [e["message"].replace("'", '"') for e in our_body["errors"]] == [
            e["message"] for e in apollo_body["errors"]
        ]
