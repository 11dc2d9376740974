"""The "people" subgraph: owns Person (key id) and Account (compound key tenant + handle)."""

from __future__ import annotations

import strawberry

from tests.gateway.subgraphs.data import ACCOUNTS, PEOPLE, PersonRow


@strawberry.federation.type(keys=["id"])
class Person:
    id: strawberry.ID
    name: str
    email: str | None
    age: int
    level: str = strawberry.federation.field(shareable=True)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Person | None:
        row = PEOPLE.get(str(id))
        return from_row(row) if row else None


def from_row(row: PersonRow) -> Person:
    """The GraphQL object of a person row."""
    return Person(
        id=strawberry.ID(row.id), name=row.name, email=row.email, age=row.age, level=row.level
    )


@strawberry.federation.type(keys=["tenant handle"])
class Account:
    tenant: str
    handle: str

    @strawberry.field
    def display_name(self) -> str:
        return f"@{self.handle} ({self.tenant})"

    @strawberry.field
    def owner(self) -> Person:
        return from_row(PEOPLE[ACCOUNTS[(self.tenant, self.handle)]])

    @classmethod
    def resolve_reference(cls, tenant: str, handle: str) -> Account | None:
        return cls(tenant=tenant, handle=handle) if (tenant, handle) in ACCOUNTS else None


@strawberry.type
class Query:
    @strawberry.field
    def people(self, first: int = 50) -> list[Person]:
        return [from_row(row) for row in list(PEOPLE.values())[:first]]

    @strawberry.field
    def person(self, id: strawberry.ID) -> Person | None:
        row = PEOPLE.get(str(id))
        return from_row(row) if row else None

    @strawberry.field
    def accounts(self) -> list[Account]:
        return [Account(tenant=t, handle=h) for t, h in ACCOUNTS]


schema = strawberry.federation.Schema(query=Query, types=[Person, Account])
