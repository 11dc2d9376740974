"""Value types and data shapes: shareable value types known in part, entities reached through
value types, null keys, nested lists, enums, errors; a supergraph Apollo refuses."""

# No ``from __future__ import annotations``: classes are local to their factory.

from enum import Enum

import strawberry

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID


def value_type_reach() -> Case:
    """An entity reached through a value type (no key) returned by another subgraph."""

    @strawberry.federation.type(keys=["id"])
    class Product:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Product | None":
            return cls(id=id, name=f"product {id}") if str(id) != "0" else None

    @strawberry.type
    class Query:
        @strawberry.field
        def product(self, id: ID) -> Product | None:
            return Product(id=id, name=f"product {id}")

    @strawberry.federation.type(name="Product", keys=["id"])
    class ProductRef:
        id: ID

    @strawberry.type
    class Line:
        quantity: int
        product: ProductRef | None

    @strawberry.type
    class Basket:
        lines: list[Line]
        grid: list[list[int]]

    @strawberry.type
    class BasketQuery:
        @strawberry.field
        def basket(self) -> Basket:
            return Basket(
                lines=[
                    Line(quantity=2, product=ProductRef(id=ID("1"))),
                    Line(quantity=1, product=None),
                    Line(quantity=5, product=ProductRef(id=ID("0"))),
                ],
                grid=[[1, 2], [], [3]],
            )

    return Case(
        "value_type_reach",
        {
            "products": Schema(query=Query),
            "baskets": Schema(query=BasketQuery, types=[ProductRef]),
        },
        (
            q("{ basket { lines { quantity product { id name } } grid } }"),
            q("{ basket { lines { product { name } } } }"),
            q('{ product(id: "4") { name } basket { grid } }'),
        ),
        arguments={"Query.product": {"id": "2"}},
    )


def enums_and_errors() -> Case:
    """Enums, nullable and non-null errors, across an entity hop."""

    @strawberry.enum
    class Status(Enum):
        OPEN = "open"
        CLOSED = "closed"

    @strawberry.federation.type(keys=["id"])
    class Ticket:
        id: ID
        status: Status

        @classmethod
        def resolve_reference(cls, id: ID) -> "Ticket":
            return cls(id=id, status=Status.OPEN if str(id) != "2" else Status.CLOSED)

    @strawberry.type
    class Query:
        @strawberry.field
        def tickets(self, status: Status | None = None) -> list[Ticket]:
            found = [
                Ticket(id=ID(str(i)), status=Status.OPEN if i != 2 else Status.CLOSED)
                for i in (1, 2, 3)
            ]  # noqa: E501
            return [t for t in found if status is None or t.status == status]

    @strawberry.federation.type(name="Ticket", keys=["id"])
    class SlaTicket:
        id: ID

        @strawberry.field
        def due(self) -> str | None:
            if str(self.id) == "3":
                raise ValueError("no SLA for ticket 3")
            return f"day {self.id}"

        @strawberry.field
        def breached(self) -> bool:
            if str(self.id) == "2":
                raise ValueError("breach unknown for ticket 2")
            return False

        @classmethod
        def resolve_reference(cls, id: ID) -> "SlaTicket":
            return cls(id=id)

    @strawberry.type
    class SlaQuery:
        @strawberry.field
        def sla_hours(self) -> int:
            return 24

    return Case(
        "enums_and_errors",
        {
            "tickets": Schema(query=Query),
            "sla": Schema(query=SlaQuery, types=[SlaTicket]),
        },
        (
            q("{ tickets { id status due } }"),
            q("{ tickets(status: CLOSED) { status breached } }"),
            q("query T($s: Status) { tickets(status: $s) { id breached due } }", {"s": "OPEN"}),
            q("{ tickets { breached } slaHours }"),
        ),
    )


def node_two_subgraphs() -> Case:
    """Two subgraphs define the entity interface ``Node``, each with its own implementation."""

    @strawberry.federation.interface(keys=["id"])
    class Node:
        id: ID

    @strawberry.federation.type(keys=["id"])
    class Post(Node):
        title: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Post":
            return cls(id=id, title="t")

    @strawberry.type
    class Query:
        @strawberry.field
        def node(self, id: ID) -> Node | None:
            return Post(id=id, title="t")

    @strawberry.federation.interface(name="Node", keys=["id"])
    class OtherNode:
        id: ID

    @strawberry.federation.type(keys=["id"])
    class Comment(OtherNode):
        body: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Comment":
            return cls(id=id, body="b")

    @strawberry.type
    class OtherQuery:
        @strawberry.field
        def comments(self) -> list[Comment]:
            return [Comment(id=ID("c1"), body="b")]

    return Case(
        "node_two_subgraphs",
        {
            "posts": Schema(query=Query, types=[Post]),
            "comments": Schema(query=OtherQuery, types=[Comment]),
        },
        (
            q('{ node(id: "1") { id } }'),
            q('{ node(id: "1") { __typename ... on Post { title } ... on Comment { body } } }'),
            q("{ comments { id body } }"),
        ),
        arguments={"Query.node": {"id": "7"}},
    )


CASES = [value_type_reach(), enums_and_errors(), node_two_subgraphs()]
