"""A subgraph validates a document once: identical requests hit the validation cache, and the
depth limit still refuses an operation nested too deep."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import strawberry
import strawberry.schema.schema as strawberry_schema
from graphql import validate

from crm_shared.graphql import SubgraphSchema, depth_limit_rule, schema_extensions


@strawberry.type
class Node:
    @strawberry.field
    def child(self) -> Node:
        return Node()

    @strawberry.field
    def name(self, suffix: str = "") -> str:
        return "node" + suffix


@strawberry.type
class Query:
    @strawberry.field
    def node(self) -> Node:
        return Node()


SCHEMA = SubgraphSchema(query=Query)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per full validation of a document (graphql-core's ``validate``)."""
    calls: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counting)
    return calls


async def test_identical_requests_are_validated_once(validations: list[int]) -> None:
    # A document of its own, so no earlier test has already cached it.
    query = f"query Q($s: String!) {{ node {{ n{uuid.uuid4().hex}: name(suffix: $s) }} }}"

    for n in range(5):
        result = await SCHEMA.execute(query, variable_values={"s": str(n)})
        assert result.errors is None

    assert len(validations) == 1


async def test_the_depth_limit_still_refuses_a_deep_operation(validations: list[int]) -> None:
    deep = "query { node { " + "child { " * 15 + "name" + " }" * 15 + " } }"

    for _ in range(2):
        result = await SCHEMA.execute(deep)
        assert result.errors is not None
        assert "exceeds maximum operation depth" in result.errors[0].message

    assert len(validations) == 1


def test_every_request_gets_the_same_depth_rule() -> None:
    first, second = (
        [e() for e in schema_extensions()][2].validation_rules,
        [e() for e in schema_extensions()][2].validation_rules,
    )

    assert first == second == [depth_limit_rule(15)]
