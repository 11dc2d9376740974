"""The planner over the committed test supergraph (no I/O): fetches, paths, order, selections."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from gateway.planner import Fetch, PlanningError, QueryPlan, RepField, build_plan
from gateway.supergraph import Supergraph
from tests.gateway.harness import FIXTURE_SUPERGRAPH

REPO_SUPERGRAPH = Path(__file__).resolve().parents[2] / "infra" / "supergraph.graphql"


@pytest.fixture(scope="module")
def supergraph() -> Supergraph:
    return Supergraph.from_file(FIXTURE_SUPERGRAPH)


def plan(supergraph: Supergraph, query: str, bools: Mapping[str, bool] | None = None) -> QueryPlan:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return build_plan(supergraph, operation, fragments, bools or {})


def summary(fetches: tuple[Fetch, ...]) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(f.subgraph, ".".join(f.path), f.depends_on) for f in fetches]


def test_list_field_from_three_subgraphs_is_one_root_and_one_entity_fetch_each(
    supergraph: Supergraph,
) -> None:
    result = plan(supergraph, "{ people { name points posts { title } } }")

    assert summary(result.fetches) == [
        ("people", "", ()),
        ("points", "people", (0,)),
        ("posts", "people", (0,)),
    ]
    assert result.fetches[0].operation == "query { people { name id __typename } }"
    assert result.fetches[1].operation == (
        "query($representations: [_Any!]!) { _entities(representations: $representations) "
        "{ ... on Person { points } } }"
    )
    assert result.fetches[1].representations == {"Person": (RepField("id", "id"),)}


def test_fields_of_one_subgraph_at_one_path_share_a_fetch(supergraph: Supergraph) -> None:
    result = plan(supergraph, "{ people { points badges level name } }")

    # level is @shareable and people is already being asked: no hop for it.
    assert summary(result.fetches) == [("people", "", ()), ("points", "people", (0,))]
    assert "... on Person { points badges }" in result.fetches[1].operation


def test_requires_field_waits_for_the_required_field_from_its_owner(
    supergraph: Supergraph,
) -> None:
    result = plan(supergraph, "{ leaderboard(top: 3) { name tier } }")

    assert summary(result.fetches) == [
        ("points", "", ()),
        ("people", "leaderboard", (0,)),
        ("points", "leaderboard", (0, 1)),
    ]
    assert "... on Person { name age }" in result.fetches[1].operation
    assert result.fetches[2].representations == {
        "Person": (RepField("id", "id"), RepField("age", "age"))
    }


def test_requires_is_satisfied_from_the_parent_fetch_when_it_owns_the_field(
    supergraph: Supergraph,
) -> None:
    result = plan(supergraph, "{ people { tier } }")

    assert summary(result.fetches) == [("people", "", ()), ("points", "people", (0,))]
    assert result.fetches[0].operation == "query { people { id age __typename } }"


def test_provides_resolves_the_field_in_the_providing_subgraph(supergraph: Supergraph) -> None:
    provided = plan(supergraph, "{ latestPosts { author { name } } }")
    not_provided = plan(supergraph, "{ latestPosts { reviewer { name } } }")

    assert summary(provided.fetches) == [("posts", "", ())]
    assert summary(not_provided.fetches) == [
        ("posts", "", ()),
        ("people", "latestPosts.reviewer", (0,)),
    ]


def test_compound_key_is_sent_whole(supergraph: Supergraph) -> None:
    result = plan(supergraph, "{ accounts { postCount } }")

    assert result.fetches[0].operation == "query { accounts { tenant handle __typename } }"
    assert result.fetches[1].representations == {
        "Account": (RepField("tenant", "tenant"), RepField("handle", "handle"))
    }


def test_unresolvable_key_reference_is_completed_by_the_owner(supergraph: Supergraph) -> None:
    result = plan(supergraph, "{ featuredPost { title author { points } } }")

    assert summary(result.fetches) == [
        ("points", "", ()),
        ("posts", "featuredPost", (0,)),
        ("points", "featuredPost.author", (1,)),
    ]


def test_union_members_owned_elsewhere_are_joined_by_typename(supergraph: Supergraph) -> None:
    result = plan(
        supergraph, '{ search(term: "x") { ... on Person { name } ... on Post { title } } }'
    )

    assert summary(result.fetches) == [("posts", "", ()), ("people", "search", (0,))]
    root = result.fetches[0].operation
    assert root.startswith('query { search(term: "x") { __typename ')
    assert "... on Post { title }" in root
    assert result.fetches[1].representations == {"Person": (RepField("id", "id"),)}


def test_interface_selection_is_expanded_per_implementation(supergraph: Supergraph) -> None:
    result = plan(supergraph, "{ gallery { url ... on Image { width } } }")

    assert result.fetches[0].operation == (
        "query { gallery { __typename ... on Image { url width } ... on Video { url } } }"
    )


def test_named_operation_names_subgraph_operations_and_forwards_used_variables(
    supergraph: Supergraph,
) -> None:
    result = plan(
        supergraph,
        "query Feed($n: Int = 3, $unused: String) { latestPosts(first: $n) { author { email } } }",
    )

    assert result.fetches[0].operation == (
        "query Feed__posts__0($n: Int = 3) { latestPosts(first: $n) { author { id __typename } } }"
    )
    assert result.fetches[0].variables == ("n",)
    assert result.fetches[1].operation_name == "Feed__people__1"
    assert result.fetches[1].variables == ()


def test_skip_and_include_values_decide_what_is_fetched(supergraph: Supergraph) -> None:
    query = "query($s: Boolean!) { people { name email @skip(if: $s) points @include(if: $s) } }"

    skipping = plan(supergraph, query, {"s": True})
    including = plan(supergraph, query, {"s": False})

    assert summary(skipping.fetches) == [("people", "", ()), ("points", "people", (0,))]
    assert skipping.fetches[0].operation == "query { people { name id __typename } }"
    assert summary(including.fetches) == [("people", "", ())]
    assert including.fetches[0].operation == "query { people { name email } }"


def test_alias_taking_a_key_name_reads_the_key_under_an_internal_alias(
    supergraph: Supergraph,
) -> None:
    result = plan(supergraph, "{ leaderboard { id: name } }")

    assert result.fetches[0].operation == "query { leaderboard { __fed_id: id __typename } }"
    assert result.fetches[1].representations == {"Person": (RepField("id", "__fed_id"),)}
    assert "... on Person { id: name }" in result.fetches[1].operation


def test_consecutive_mutation_fields_of_one_subgraph_share_a_fetch_before_entity_hops(
    supergraph: Supergraph,
) -> None:
    result = plan(
        supergraph,
        'mutation { a: recordVisit(personId: "p1") { name } '
        'b: recordVisit(personId: "p2") { id } }',
    )

    assert result.kind == "mutation"
    assert summary(result.fetches) == [("points", "", ()), ("people", "a", (0,))]
    assert result.fetches[0].operation.startswith("mutation {")


def test_introspection_and_typename_need_no_fetch(supergraph: Supergraph) -> None:
    result = plan(supergraph, "{ __typename __schema { queryType { name } } }")

    assert result.fetches == ()
    assert [node.name.value for node in result.introspection] == ["__schema"]


def test_a_subscription_is_refused_by_a_supergraph_without_subscriptions(
    supergraph: Supergraph,
) -> None:
    with pytest.raises(PlanningError):
        plan(supergraph, "subscription { people { id } }")


def test_a_subscription_streams_from_its_owner_and_completes_events_by_entity_fetches() -> None:
    crm = Supergraph.from_file(REPO_SUPERGRAPH)
    result = plan(
        crm,
        "subscription Watch($id: ID!) { balanceChanged(customerId: $id) "
        "{ name rewards { balance } } }",
    )

    assert result.kind == "subscription"
    assert summary(result.fetches) == [
        ("rewards", "", ()),
        ("identity", "balanceChanged", (0,)),
    ]
    assert result.fetches[0].operation.startswith("subscription Watch__rewards__0($id: ID!) {")
    assert result.fetches[1].operation.startswith("query Watch__identity__1(")


VALUE_TYPE_SUPERGRAPH = """
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)
{
  query: Query
}

directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet,
  type: String, external: Boolean, override: String, usedOverridden: Boolean)
  repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false,
  resolvable: Boolean! = true, isInterfaceObject: Boolean! = false)
  repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import])
  repeatable on SCHEMA

scalar join__FieldSet
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

enum join__Graph {
  A @join__graph(name: "a", url: "http://a.invalid/graphql")
  B @join__graph(name: "b", url: "http://b.invalid/graphql")
}

type Query @join__type(graph: A) @join__type(graph: B) {
  product: Product @join__field(graph: A)
  stats: Stats @join__field(graph: A) @join__field(graph: B)
}

type Product @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID!
  price: Money @join__field(graph: A) @join__field(graph: B)
}

type Money @join__type(graph: A) @join__type(graph: B) {
  amount: Int
  currency: String @join__field(graph: B)
}

type Stats @join__type(graph: A) @join__type(graph: B) {
  count: Int
  extra: Int @join__field(graph: B)
}
"""


def test_shareable_value_type_known_partly_here_is_taken_from_where_it_is_whole() -> None:
    supergraph = Supergraph(VALUE_TYPE_SUPERGRAPH)

    nested = plan(supergraph, "{ product { price { amount currency } } }")
    local = plan(supergraph, "{ product { price { amount } } }")
    root = plan(supergraph, "{ stats { count extra } }")

    assert summary(nested.fetches) == [("a", "", ()), ("b", "product", (0,))]
    assert "... on Product { price { amount currency } }" in nested.fetches[1].operation
    assert summary(local.fetches) == [("a", "", ())]
    assert summary(root.fetches) == [("b", "", ())]
