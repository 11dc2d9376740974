"""The supergraph reader: ownership from join directives and the API schema (no I/O)."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType, print_schema

from gateway.supergraph import Supergraph, SupergraphError
from tests.gateway.harness import (
    FIXTURE_SUPERGRAPH,
    FIXTURE_URL,
    SUBGRAPH_SCHEMAS,
    compose,
    node_tooling_missing,
)


@pytest.fixture(scope="module")
def supergraph() -> Supergraph:
    return Supergraph.from_file(FIXTURE_SUPERGRAPH)


def test_subgraph_urls_come_from_join_graph_and_can_be_overridden() -> None:
    plain = Supergraph.from_file(FIXTURE_SUPERGRAPH)
    overridden = Supergraph.from_file(
        FIXTURE_SUPERGRAPH, {"points": "http://127.0.0.1:9/graphql"}
    )

    assert plain.subgraph_urls == {
        "people": "http://subgraph.invalid/people/graphql",
        "points": "http://subgraph.invalid/points/graphql",
        "posts": "http://subgraph.invalid/posts/graphql",
    }
    assert overridden.subgraph_urls["points"] == "http://127.0.0.1:9/graphql"
    assert overridden.subgraph_urls["people"] == plain.subgraph_urls["people"]


def test_api_schema_drops_join_machinery_and_inaccessible_elements(
    supergraph: Supergraph,
) -> None:
    api = print_schema(supergraph.api_schema)

    for machinery in ("join__", "link__", "@link", "@inaccessible", "internalScore"):
        assert machinery not in api
    person = supergraph.api_schema.get_type("Person")
    assert isinstance(person, GraphQLObjectType)
    assert {"id", "name", "email", "age", "level", "points", "tier", "badges", "posts"} == set(
        person.fields
    )
    # The full schema still knows the inaccessible field (it may be needed for joins).
    full_person = supergraph.schema.get_type("Person")
    assert isinstance(full_person, GraphQLObjectType)
    assert "internalScore" in full_person.fields


def test_owners_external_requires_and_provides_are_read(supergraph: Supergraph) -> None:
    assert supergraph.field_graphs("Person", "name") == ["people"]
    assert supergraph.field_graphs("Person", "level") == ["people", "points"]
    assert supergraph.field_graphs("Person", "id") == ["people", "points", "posts"]
    assert not supergraph.can_resolve("points", "Person", "age")
    tier = supergraph.field_join("Person", "tier", "points")
    assert tier is not None and tier.requires == "age"
    author = supergraph.field_join("Post", "author", "posts")
    assert author is not None and author.provides == "name"


def test_keys_compound_and_unresolvable_are_read(supergraph: Supergraph) -> None:
    assert [k.fields for k in supergraph.keys("Account", "people")] == ["tenant handle"]
    assert [k.fields for k in supergraph.keys("Person", "posts")] == ["id"]
    # points declares Post @key(fields: "id", resolvable: false): never an _entities target.
    assert supergraph.keys("Post", "points") == []
    assert [k.fields for k in supergraph.keys("Post", "posts")] == ["id"]


def test_possible_types_follow_the_subgraph_view(supergraph: Supergraph) -> None:
    assert supergraph.possible_types_in("posts", "Media") == ["Image", "Video"]
    assert supergraph.possible_types_in("people", "Media") == []
    assert sorted(supergraph.possible_types_in("posts", "SearchResult")) == ["Person", "Post"]


def test_sdl_without_join_link_is_refused() -> None:
    with pytest.raises(SupergraphError):
        Supergraph("type Query { a: Int }")


def test_committed_fixture_supergraph_matches_composition_of_the_test_subgraphs() -> None:
    missing = node_tooling_missing()
    if missing:
        pytest.skip(f"composition needs node tooling: {missing}")
    composed = compose({name: FIXTURE_URL.format(name=name) for name in SUBGRAPH_SCHEMAS})

    assert composed == FIXTURE_SUPERGRAPH.read_text(encoding="utf-8")
