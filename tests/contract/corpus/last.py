"""Unions of entities completed elsewhere, requirements on lists, partial failures."""

# strawberry.federation.field used as a decorator (with directives) is untyped.
# mypy: disable-error-code="untyped-decorator"
# No ``from __future__ import annotations``: classes are local to their factory.

from typing import Annotated

import strawberry

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID


def union_of_entities() -> Case:
    """A union of entities in one subgraph; their other fields live in a second one."""

    @strawberry.federation.type(keys=["id"])
    class Song:
        id: ID

        @classmethod
        def resolve_reference(cls, id: ID) -> "Song":
            return cls(id=id)

    @strawberry.federation.type(keys=["id"])
    class Podcast:
        id: ID

        @classmethod
        def resolve_reference(cls, id: ID) -> "Podcast":
            return cls(id=id)

    Playable = Annotated[Song | Podcast, strawberry.union("Playable")]

    @strawberry.type
    class Query:
        @strawberry.field
        def queue(self) -> list[Playable]:
            return [Song(id=ID("s1")), Podcast(id=ID("p1")), Song(id=ID("s2"))]

    @strawberry.federation.type(name="Song", keys=["id"])
    class SongInfo:
        id: ID

        @strawberry.field
        def title(self) -> str:
            return f"song {self.id}"

        @classmethod
        def resolve_reference(cls, id: ID) -> "SongInfo":
            return cls(id=id)

    @strawberry.federation.type(name="Podcast", keys=["id"])
    class PodcastInfo:
        id: ID

        @strawberry.field
        def title(self) -> str:
            return f"podcast {self.id}"

        @strawberry.field
        def episodes(self) -> int:
            return 12

        @classmethod
        def resolve_reference(cls, id: ID) -> "PodcastInfo":
            return cls(id=id)

    @strawberry.type
    class InfoQuery:
        @strawberry.field
        def catalog_size(self) -> int:
            return 2

    return Case(
        "union_of_entities",
        {
            "player": Schema(query=Query, types=[Song, Podcast]),
            "info": Schema(query=InfoQuery, types=[SongInfo, PodcastInfo]),
        },
        (
            q("{ queue { __typename ... on Song { title } ... on Podcast { title episodes } } }"),
            q("{ queue { ... on Podcast { episodes } } catalogSize }"),
            q("{ queue { ... on Song { id } } }"),
        ),
    )


def requires_list() -> Case:
    """``@requires`` on a list of scalars and on a list of value objects."""

    @strawberry.federation.type(shareable=True)
    class Line:
        sku: str
        qty: int

    @strawberry.federation.type(keys=["id"])
    class Cart:
        id: ID
        tags: list[str]
        lines: list[Line]

        @classmethod
        def resolve_reference(cls, id: ID) -> "Cart":
            n = int(str(id)[1:])
            return cls(
                id=id,
                tags=[f"t{i}" for i in range(n)],
                lines=[Line(sku=f"k{i}", qty=i + 1) for i in range(n)],
            )

    @strawberry.type
    class Query:
        @strawberry.field
        def carts(self) -> list[Cart]:
            return [Cart.resolve_reference(ID(f"c{i}")) for i in (0, 1, 3)]

    @strawberry.federation.type(name="Line", shareable=True)
    class ExtLine:
        qty: int = strawberry.federation.field(external=True)

    @strawberry.federation.type(name="Cart", keys=["id"])
    class CheckoutCart:
        id: ID
        tags: list[str] = strawberry.federation.field(external=True, default_factory=list)
        lines: list[ExtLine] = strawberry.federation.field(external=True, default_factory=list)

        @strawberry.federation.field(requires=["tags"])
        def label(self) -> str:
            return "+".join(self.tags or ["none"])

        @strawberry.federation.field(requires=["lines { qty }"])
        def items(self) -> int:
            return sum(line["qty"] for line in self.lines or [])  # type: ignore[index]

        @classmethod
        def resolve_reference(
            cls, id: ID, tags: list[str] | None = None, lines: object = None
        ) -> "CheckoutCart":
            return cls(id=id, tags=tags or [], lines=lines or [])  # type: ignore[arg-type]

    @strawberry.type
    class CheckoutQuery:
        @strawberry.field
        def checkout_open(self) -> bool:
            return True

    return Case(
        "requires_list",
        {
            "carts": Schema(query=Query),
            "checkout": Schema(query=CheckoutQuery, types=[CheckoutCart]),
        },
        (
            q("{ carts { id label items } }"),
            q("{ carts { lines { sku } items } }"),
            q("{ carts { label tags } checkoutOpen }"),
        ),
    )


def partial_failures() -> Case:
    """An entity subgraph fails for some objects; a nullable field is nulled with its error."""

    @strawberry.federation.type(keys=["id"])
    class Device:
        id: ID
        model: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Device":
            return cls(id=id, model=f"model {id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def devices(self) -> list[Device]:
            return [Device(id=ID(str(i)), model=f"model {i}") for i in range(1, 6)]

    @strawberry.federation.type(name="Device", keys=["id"])
    class Telemetry:
        id: ID

        @strawberry.field
        def battery(self) -> int | None:
            if int(str(self.id)) % 2 == 0:
                raise ValueError(f"device {self.id} is offline")
            return 90

        @strawberry.field
        def firmware(self) -> str:
            if str(self.id) == "5":
                raise ValueError("firmware unknown")
            return "1.2"

        @classmethod
        def resolve_reference(cls, id: ID) -> "Telemetry":
            return cls(id=id)

    @strawberry.type
    class TelemetryQuery:
        @strawberry.field
        def online(self) -> int:
            return 3

    return Case(
        "partial_failures",
        {
            "devices": Schema(query=Query),
            "telemetry": Schema(query=TelemetryQuery, types=[Telemetry]),
        },
        (
            q("{ devices { id battery } }"),
            q("{ devices { model firmware } }"),
            q("{ devices { battery firmware } online }"),
        ),
    )


def requires_through_reference() -> Case:
    """``label @requires(fields: "owner { name }")``: owner is a reference the shops subgraph
    returns, its name lives in a third subgraph (this plan used to raise KeyError: HTTP 500)."""

    @strawberry.federation.type(keys=["id"])
    class Person:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Person":
            return cls(id=id, name=f"person {id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def people(self) -> list[Person]:
            return [Person(id=ID("1"), name="person 1")]

    @strawberry.federation.type(name="Person", keys=["id"])
    class PersonRef:
        id: ID

    @strawberry.federation.type(keys=["id"])
    class Shop:
        id: ID
        owner: PersonRef | None

        @classmethod
        def resolve_reference(cls, id: ID) -> "Shop":
            return cls(id=id, owner=PersonRef(id=ID(str(id)[1:])))

    @strawberry.type
    class ShopQuery:
        @strawberry.field
        def shops(self) -> list[Shop]:
            return [Shop.resolve_reference(ID(f"s{i}")) for i in (1, 2)]

    @strawberry.federation.type(name="Person", keys=["id"])
    class NamedRef:
        id: ID
        name: str = strawberry.federation.field(external=True)

    @strawberry.federation.type(name="Shop", keys=["id"])
    class LabelledShop:
        id: ID
        owner: NamedRef | None = strawberry.federation.field(external=True, default=None)

        @strawberry.federation.field(requires=["owner { name }"])
        def label(self) -> str:
            owner = self.owner
            if not isinstance(owner, dict):
                raise ValueError("owner was not sent")
            return f"{owner['name']}'s shop"

        @classmethod
        def resolve_reference(cls, id: ID, owner: object = None) -> "LabelledShop":
            return cls(id=id, owner=owner)  # type: ignore[arg-type]

    @strawberry.type
    class LabelQuery:
        @strawberry.field
        def label_font(self) -> str:
            return "serif"

    return Case(
        "requires_through_reference",
        {
            "people": Schema(query=Query),
            "shops": Schema(query=ShopQuery, types=[PersonRef]),
            "labels": Schema(query=LabelQuery, types=[LabelledShop, NamedRef]),
        },
        (
            q("{ shops { id label } }"),
            q("{ shops { label owner { name } } }"),
        ),
    )


CASES = [union_of_entities(), requires_list(), partial_failures(), requires_through_reference()]
