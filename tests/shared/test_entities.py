"""``_entities`` refuses representations that name no entity of the subgraph as bad input."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from crm_shared.graphql import SubgraphSchema


@strawberry.federation.type(keys=["id"])
class Thing:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Thing:
        return Thing(id=id)


@strawberry.type
class Query:
    @strawberry.field
    def thing(self) -> Thing:
        return Thing(id=strawberry.ID("1"))


SCHEMA = SubgraphSchema(query=Query)
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Thing { id } } }"


@pytest.mark.parametrize(
    "representation",
    ["x", 7, [], {"id": "1"}, {"__typename": "Nope", "id": "1"}, {"__typename": "String"}],
)
async def test_a_representation_naming_no_entity_is_bad_user_input(representation: Any) -> None:
    result = await SCHEMA.execute(
        ENTITIES, variable_values={"r": [{"__typename": "Thing", "id": "1"}, representation]}
    )

    assert result.errors is not None
    [error] = result.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "representations.1"}


async def test_a_representation_of_an_entity_resolves() -> None:
    result = await SCHEMA.execute(
        ENTITIES, variable_values={"r": [{"__typename": "Thing", "id": "1"}]}
    )

    assert result.errors is None
    assert result.data == {"_entities": [{"id": "1"}]}
