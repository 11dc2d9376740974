"""Result shaping, merging and the caches of the pipeline (no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLUnionType,
    OperationDefinitionNode,
    parse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.client import SubgraphClient
from gateway.executor import deep_merge, objects_at, representation, subgraph_error
from gateway.planner import RepField, build_plan
from gateway.runtime import EdgePolicy, Gateway
from gateway.shaping import Shaper
from gateway.supergraph import Supergraph
from tests.gateway.harness import FIXTURE_SUPERGRAPH


@pytest.fixture(scope="module")
def supergraph() -> Supergraph:
    return Supergraph.from_file(FIXTURE_SUPERGRAPH)


def shape(
    supergraph: Supergraph, query: str, data: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    operation = parse(query).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    plan = build_plan(supergraph, operation, {}, {})
    return Shaper(supergraph.api_schema, plan).shape(data, None)


def test_shaping_keeps_asked_fields_in_order_under_aliases(supergraph: Supergraph) -> None:
    # Subgraphs answer under the aliases the gateway forwarded; join fields are extra.
    data = {"people": [{"name": "A", "id": "p1", "__typename": "Person", "pts": 3}]}

    shaped, errors = shape(supergraph, "{ people { pts: points __typename name } }", data)

    assert shaped == {"people": [{"pts": 3, "__typename": "Person", "name": "A"}]}
    assert shaped is not None
    assert list(shaped["people"][0]) == ["pts", "__typename", "name"]
    assert errors == []


def test_null_in_non_null_field_nulls_the_nearest_nullable_parent(
    supergraph: Supergraph,
) -> None:
    data = {"person": {"name": "A", "posts": [{"id": "x", "rating": None}]}}

    shaped, errors = shape(supergraph, '{ person(id: "p1") { name posts { id rating } } }', data)

    # rating: Int! -> the Post is null -> [Post!] element not null-able -> posts is null.
    assert shaped == {"person": {"name": "A", "posts": None}}
    assert errors == [
        {
            "message": "Cannot return null for non-nullable field Post.rating.",
            "path": ["person", "posts", 0, "rating"],
            "extensions": {"code": "INVALID_GRAPHQL"},
        }
    ]


def test_null_bubbling_to_a_non_null_root_field_nulls_data(supergraph: Supergraph) -> None:
    shaped, errors = shape(supergraph, "{ people { name } }", {})

    assert shaped is None
    assert [e["path"] for e in errors] == [["people"]]


def test_invalid_leaf_values_become_null_with_an_error(supergraph: Supergraph) -> None:
    shaped, errors = shape(supergraph, '{ person(id: "p1") { email } }', {"person": {"email": 12}})

    assert shaped == {"person": {"email": None}}
    assert errors[0]["message"] == "Invalid value found for field Person.email."


def test_fragment_on_other_member_is_not_applied(supergraph: Supergraph) -> None:
    data = {"search": [{"__typename": "Person", "name": "A"}, {"__typename": "Post", "title": "T"}]}

    shaped, _ = shape(
        supergraph, '{ search(term: "x") { ... on Person { name } ... on Post { title } } }', data
    )

    assert shaped == {"search": [{"name": "A"}, {"title": "T"}]}


def test_objects_at_flattens_lists_and_reports_concrete_paths() -> None:
    data = {"a": [{"b": [{"k": 1}, None, {"k": 2}]}, None, {"b": {"k": 3}}]}

    found = objects_at(data, ("a", "b"))

    assert [(obj["k"], path) for obj, path in found] == [
        (1, ["a", 0, "b", 0]),
        (2, ["a", 0, "b", 2]),
        (3, ["a", 2, "b"]),
    ]


def test_representation_uses_field_names_and_refuses_missing_keys() -> None:
    fields = (RepField("id", "__fed_id"), RepField("org", "org", (RepField("id", "id"),)))

    assert representation({"__fed_id": "1", "org": {"id": "o"}}, "T", fields) == {
        "__typename": "T",
        "id": "1",
        "org": {"id": "o"},
    }
    assert representation({"org": {"id": "o"}}, "T", fields) is None


def test_deep_merge_merges_nested_objects_and_same_length_lists() -> None:
    target: dict[str, Any] = {"a": {"x": 1}, "l": [{"y": 1}, {"y": 2}]}

    deep_merge(target, {"a": {"z": 2}, "l": [{"w": 1}, {"w": 2}], "n": None})

    assert target == {"a": {"x": 1, "z": 2}, "l": [{"y": 1, "w": 1}, {"y": 2, "w": 2}], "n": None}


def test_subgraph_errors_keep_their_code_or_get_downstream_service_error() -> None:
    coded = subgraph_error({"message": "m", "extensions": {"code": "FORBIDDEN"}}, "s", ["a"])
    plain = subgraph_error({"message": "m", "locations": [{"line": 1}]}, "s", None)

    assert coded == {
        "message": "m",
        "path": ["a"],
        "extensions": {"code": "FORBIDDEN", "serviceName": "s"},
    }
    assert plain == {
        "message": "m",
        "extensions": {"serviceName": "s", "code": "DOWNSTREAM_SERVICE_ERROR"},
    }


def test_same_document_is_parsed_and_validated_once_and_planned_once(
    supergraph: Supergraph,
) -> None:
    gateway = Gateway(supergraph, SubgraphClient(timeout_seconds=1))
    query = "query Q($s: Boolean!) { people { name points @include(if: $s) } }"

    first = gateway.document(query)
    assert gateway.document(query) is first
    operation = first.operations["Q"]
    included = gateway.plan(query, first, "Q", operation, {"s": True})
    assert gateway.plan(query, first, "Q", operation, {"s": True}) is included
    excluded = gateway.plan(query, first, "Q", operation, {"s": False})
    assert excluded is not included
    assert included.plan is not None and excluded.plan is not None
    assert len(included.plan.fetches) == 2 and len(excluded.plan.fetches) == 1


def test_invalid_documents_are_cached_with_their_errors(supergraph: Supergraph) -> None:
    gateway = Gateway(supergraph, SubgraphClient(timeout_seconds=1))

    entry = gateway.document("{ people { internalScore } }")

    assert gateway.document("{ people { internalScore } }") is entry
    assert entry.status == 400 and entry.errors is not None
    assert entry.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


# -- the shaper's fast paths against its generic walk -----------------------------------------

_DIFFERENTIAL_QUERIES = (
    "{ people { id name email age badges posts { id title rating author { name }"
    " reviewer { name } media { url ... on Image { width } } } } }",
    '{ person(id: "p1") { name email posts { id rating reviewer { id } } } }',
    "{ postsConnection(first: 2) { totalCount edges { cursor node { id title"
    " author { id name } } } } }",
    '{ search(term: "x") { __typename ... on Person { name age } ... on Post { title } } }',
    "{ gallery { url __typename ... on Video { seconds } } featuredPost { title } }",
    '{ leaderboard { n: name points } post(id: "p") { author { __typename name } } }',
)

_WRONG = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=2),
    st.just({}),
    st.just([]),
)


def _subgraph_values(
    schema: GraphQLSchema, type_: GraphQLOutputType, depth: int = 0
) -> st.SearchStrategy[Any]:
    """Values a subgraph could send for ``type_``: mostly valid, sometimes null or wrong."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if depth > 4:
        return _WRONG
    if isinstance(type_, GraphQLList):
        valid: st.SearchStrategy[Any] = st.lists(
            _subgraph_values(schema, type_.of_type, depth + 1), max_size=3
        )
    elif isinstance(type_, GraphQLObjectType):
        valid = _object_values(schema, type_, depth)
    elif isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
        members = schema.get_possible_types(type_)
        valid = st.one_of(*(_object_values(schema, m, depth) for m in members))
    else:
        scalars: dict[str, st.SearchStrategy[Any]] = {
            "String": st.text(max_size=3),
            "ID": st.one_of(st.text(max_size=3), st.integers(0, 9)),
            "Int": st.integers(-5, 5),
            "Float": st.floats(allow_nan=False, allow_infinity=False),
            "Boolean": st.booleans(),
        }
        valid = scalars.get(getattr(type_, "name", ""), st.text(max_size=3))
    return st.one_of(valid, valid, valid, _WRONG)


def _object_values(
    schema: GraphQLSchema, type_: GraphQLObjectType, depth: int
) -> st.SearchStrategy[Any]:
    def field_values(field_type: GraphQLOutputType) -> st.SearchStrategy[Any]:
        return st.deferred(lambda: _subgraph_values(schema, field_type, depth + 1))

    optional: dict[str, st.SearchStrategy[Any]] = {
        "__typename": st.sampled_from([type_.name, type_.name, "Post", "Person", "Nope", None])
    }
    for name, field in type_.fields.items():
        optional[name] = field_values(field.type)
    return st.fixed_dictionaries({}, optional=optional)


@pytest.mark.parametrize("query", _DIFFERENTIAL_QUERIES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_paths_shape_exactly_as_the_generic_walk(
    supergraph: Supergraph, query: str, data: st.DataObject
) -> None:
    schema = supergraph.api_schema
    assert schema.query_type is not None
    value = data.draw(_object_values(schema, schema.query_type, 0))
    operation = parse(query).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    plan = build_plan(supergraph, operation, {}, {})

    def outcome(shaper: Shaper) -> Any:
        try:
            return shaper.shape(copy.deepcopy(value), None)
        except KeyError as error:
            # An object of a type the selection does not fit (a wrong __typename): both
            # walks refuse it alike.
            return repr(error)

    assert outcome(Shaper(schema, plan)) == outcome(Shaper(schema, plan, fast_paths=False))


async def test_cost_is_measured_once_per_page_size_and_not_per_other_variable(
    supergraph: Supergraph,
) -> None:
    gateway = Gateway(
        supergraph, SubgraphClient(timeout_seconds=1), policy=EdgePolicy(max_list_size=10)
    )
    query = "query Q($n: Int!, $id: ID!) { people(first: $n) { name } person(id: $id) { name } }"

    too_many = await gateway.execute(query, {"n": 50, "id": "p1"})
    for person in ("p1", "p2", "p3"):
        # Not refused by the edge: it goes on to a subgraph (this client is not started).
        answer = await gateway.execute(query, {"n": 5, "id": person})
        assert answer.status == 200
    refused_again = await gateway.execute(query, {"n": 50, "id": "p9"})

    assert too_many.status == refused_again.status == 400
    assert too_many.body == refused_again.body
    assert too_many.body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    info = gateway.document(query).infos["Q"]
    assert info.page_size_variables == ("n",)
    assert sorted(key[1] for key in info.measures) == [(5,), (50,)]
