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
    overridden = Supergraph.from_file(FIXTURE_SUPERGRAPH, {"points": "http://127.0.0.1:9/graphql"})

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


# A hand-written supergraph in the shape composition produces, with the join spec renamed.
RENAMED_SUPERGRAPH = """
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.3", as: "j", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/inaccessible/v0.2", as: "hidden", for: SECURITY)
{
  query: Query
}

directive @j__field(graph: j__Graph, requires: j__FieldSet, provides: j__FieldSet, type: String,
  external: Boolean, override: String, usedOverridden: Boolean)
  repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @j__graph(name: String!, url: String!) on ENUM_VALUE
directive @j__implements(graph: j__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @j__type(graph: j__Graph!, key: j__FieldSet, extension: Boolean! = false,
  resolvable: Boolean! = true, isInterfaceObject: Boolean! = false)
  repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @j__unionMember(graph: j__Graph!, member: String!) repeatable on UNION
directive @j__enumValue(graph: j__Graph!) repeatable on ENUM_VALUE
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import])
  repeatable on SCHEMA
directive @hidden on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ENUM | ENUM_VALUE | SCALAR
  | INPUT_OBJECT | INPUT_FIELD_DEFINITION | ARGUMENT_DEFINITION

scalar j__FieldSet
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

enum j__Graph {
  A @j__graph(name: "a", url: "http://a.invalid/graphql")
  B @j__graph(name: "b", url: "http://b.invalid/graphql")
}

type Query @j__type(graph: A) @j__type(graph: B) {
  items(filter: Filter, debug: Boolean @hidden): [Item] @j__field(graph: A)
  search: [Result] @j__field(graph: B)
}

type Item @j__type(graph: A, key: "id") @j__type(graph: B, key: "id") {
  id: ID!
  price: Int @j__field(graph: A, usedOverridden: true) @j__field(graph: B, override: "a")
  color: Color @j__field(graph: A)
}

type Secret @j__type(graph: B) @hidden {
  code: String
}

union Result @j__type(graph: B) @j__unionMember(graph: B, member: "Item")
  @j__unionMember(graph: B, member: "Secret") = Item | Secret

enum Color @j__type(graph: A) {
  RED @j__enumValue(graph: A)
  INFRARED @j__enumValue(graph: A) @hidden
}

input Filter @j__type(graph: A) {
  color: Color
  internal: String @hidden
}
"""


def test_renamed_specs_override_and_inaccessible_elements_are_understood() -> None:
    supergraph = Supergraph(RENAMED_SUPERGRAPH)
    api = print_schema(supergraph.api_schema)

    assert supergraph.subgraph_urls == {
        "a": "http://a.invalid/graphql",
        "b": "http://b.invalid/graphql",
    }
    # @override: b resolves price; a's overridden copy only serves joins.
    assert supergraph.field_graphs("Item", "price") == ["b"]
    assert supergraph.field_graphs("Item", "price", internal=True) == ["a", "b"]
    for gone in ("Secret", "INFRARED", "debug", "internal", "j__", "@hidden", "link__"):
        assert gone not in api
    assert "union Result = Item" in api
    assert "items(filter: Filter): [Item]" in api
