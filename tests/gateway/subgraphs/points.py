"""The "points" subgraph: @requires, @shareable and @inaccessible fields on Person."""

from __future__ import annotations

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from tests.gateway.subgraphs.data import BADGES_FAIL_FOR, PEOPLE, points_of, tier_for


def _level(root: Person) -> str:
    return ("gold", "silver", "bronze")[int(str(root.id)[1:]) % 3]


def _tier(root: Person) -> str:
    if root.age < 0:
        raise ValueError("age was not provided")
    return tier_for(root.age)


def _internal_score(root: Person) -> int:
    return 7


@strawberry.federation.type(keys=["id"])
class Person:
    id: strawberry.ID
    # -1: the gateway did not send the age this subgraph @requires.
    age: int = strawberry.federation.field(external=True, default=-1)
    level: str = strawberry.federation.field(resolver=_level, shareable=True)
    tier: str = strawberry.federation.field(resolver=_tier, requires=["age"])
    internal_score: int = strawberry.federation.field(resolver=_internal_score, inaccessible=True)

    @strawberry.field
    def points(self) -> int:
        return points_of(str(self.id))

    @strawberry.field
    def badges(self) -> list[str] | None:
        if str(self.id) == BADGES_FAIL_FOR:
            raise ValueError(f"badges unavailable for {self.id}")
        return ["early-bird"] if int(str(self.id)[1:]) % 2 else []

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, age: int = -1) -> Person:
        return cls(id=id, age=age)


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class Post:
    id: strawberry.ID


@strawberry.type
class Query:
    @strawberry.field
    def leaderboard(self, top: int = 5) -> list[Person]:
        ranked = sorted(PEOPLE, key=lambda pid: -points_of(pid))[:top]
        return [Person(id=strawberry.ID(pid)) for pid in ranked]

    @strawberry.field
    def featured_post(self) -> Post:
        return Post(id=strawberry.ID("post-5-1"))


@strawberry.type
class Mutation:
    @strawberry.mutation
    def record_visit(self, person_id: strawberry.ID) -> Person:
        if str(person_id) not in PEOPLE:
            raise ValueError(f"unknown person {person_id}")
        return Person(id=person_id)


schema = strawberry.federation.Schema(query=Query, mutation=Mutation, types=[Person, Post])
