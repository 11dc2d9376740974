"""Abstract types: interfaces and unions across subgraphs, conflicting member fields,
``@provides`` through an interface, entity interfaces and ``@interfaceObject``."""

# No ``from __future__ import annotations``: classes are local to their factory.

from typing import Annotated

import strawberry

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID


def interface_across() -> Case:
    """An interface whose implementations are entities completed by another subgraph."""

    @strawberry.federation.interface
    class Media:
        id: ID
        title: str

    @strawberry.federation.type(keys=["id"])
    class Book(Media):
        pages: int

        @classmethod
        def resolve_reference(cls, id: ID) -> "Book":
            return cls(id=id, title=f"book {id}", pages=100)

    @strawberry.federation.type(keys=["id"])
    class Movie(Media):
        minutes: int

        @classmethod
        def resolve_reference(cls, id: ID) -> "Movie":
            return cls(id=id, title=f"movie {id}", minutes=90)

    @strawberry.type
    class Query:
        @strawberry.field
        def library(self) -> list[Media]:
            return [
                Book(id=ID("b1"), title="book b1", pages=100),
                Movie(id=ID("m1"), title="movie m1", minutes=90),
                Book(id=ID("b2"), title="book b2", pages=250),
            ]

    @strawberry.federation.type(name="Book", keys=["id"])
    class RatedBook:
        id: ID

        @strawberry.field
        def rating(self) -> int:
            return len(str(self.id)) + 2

        @classmethod
        def resolve_reference(cls, id: ID) -> "RatedBook":
            return cls(id=id)

    @strawberry.federation.type(name="Movie", keys=["id"])
    class RatedMovie:
        id: ID

        @strawberry.field
        def rating(self) -> int:
            return 5

        @classmethod
        def resolve_reference(cls, id: ID) -> "RatedMovie":
            return cls(id=id)

    @strawberry.type
    class RatingQuery:
        @strawberry.field
        def best_movie(self) -> RatedMovie:
            return RatedMovie(id=ID("m1"))

    return Case(
        "interface_across",
        {
            "media": Schema(query=Query, types=[Book, Movie]),
            "ratings": Schema(query=RatingQuery, types=[RatedBook, RatedMovie]),
        },
        (
            q("{ library { __typename id title } }"),
            q("{ library { title ... on Book { pages rating } ... on Movie { rating } } }"),
            q("{ library { ... on Movie { minutes rating } } bestMovie { title } }"),
            q("query { library { ...B } } fragment B on Book { rating pages }"),
        ),
    )


def union_partial() -> Case:
    """A union whose members come from two subgraphs; each subgraph knows part of it."""

    @strawberry.federation.type(keys=["id"])
    class Article:
        id: ID
        headline: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Article":
            return cls(id=id, headline=f"headline {id}")

    @strawberry.federation.type(keys=["id"])
    class Author:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Author":
            return cls(id=id, name=f"author {id}")

    Result = Annotated[Article | Author, strawberry.union("Result")]

    @strawberry.type
    class Query:
        @strawberry.field
        def search(self) -> list[Result]:
            return [Article(id=ID("a1"), headline="headline a1"), Author(id=ID("p1"), name="ann")]

    @strawberry.federation.type(keys=["id"])
    class Video:
        id: ID
        url: str

    @strawberry.federation.type(name="Author", keys=["id"])
    class VideoAuthor:
        id: ID

        @strawberry.field
        def channel(self) -> str:
            return f"channel of {self.id}"

        @classmethod
        def resolve_reference(cls, id: ID) -> "VideoAuthor":
            return cls(id=id)

    VideoResult = Annotated[Video | VideoAuthor, strawberry.union("Result")]

    @strawberry.type
    class VideoQuery:
        @strawberry.field
        def trending(self) -> list[VideoResult]:
            return [Video(id=ID("v1"), url="/v1"), VideoAuthor(id=ID("p2"))]

    return Case(
        "union_partial",
        {
            "news": Schema(query=Query, types=[Article, Author]),
            "videos": Schema(query=VideoQuery, types=[Video, VideoAuthor]),
        },
        (
            q(
                "{ search { __typename ... on Article { headline } "
                "... on Author { name channel } } }"
            ),
            q("{ trending { __typename ... on Video { url } ... on Author { name channel } } }"),
            # Article is no member of videos' Result: the spread must not be sent there.
            q("{ trending { ... on Article { headline } ... on Video { id } } }"),
            q("{ search { ... on Video { url } ... on Author { id } } }"),
        ),
    )


def conflicting_member_fields() -> Case:
    """Members of one union have fields of one name and different types."""

    @strawberry.type
    class Temperature:
        value: float
        unit: str

    @strawberry.type
    class Label:
        value: str
        unit: str | None

    @strawberry.type
    class Counter:
        value: int | None

    Reading = Annotated[Temperature | Label | Counter, strawberry.union("Reading")]

    @strawberry.type
    class Query:
        @strawberry.field
        def readings(self) -> list[Reading]:
            return [
                Temperature(value=21.5, unit="C"),
                Label(value="warm", unit=None),
                Counter(value=3),
            ]

    return Case(
        "conflicting_member_fields",
        {"sensors": Schema(query=Query)},
        (
            q(
                "{ readings { ... on Temperature { value unit } ... on Label { value } "
                "... on Counter { value } } }"
            ),
            q("{ readings { __typename ... on Label { unit } ... on Temperature { unit } } }"),
        ),
    )


def conflicting_fields_across() -> Case:
    """Conflicting member fields where members are entities completed by another subgraph."""

    @strawberry.federation.interface
    class Node:
        id: ID

    @strawberry.federation.type(keys=["id"])
    class Sensor(Node):
        id: ID

        @classmethod
        def resolve_reference(cls, id: ID) -> "Sensor":
            return cls(id=id)

    @strawberry.federation.type(keys=["id"])
    class Gauge(Node):
        id: ID

        @classmethod
        def resolve_reference(cls, id: ID) -> "Gauge":
            return cls(id=id)

    @strawberry.type
    class Query:
        @strawberry.field
        def nodes(self) -> list[Node]:
            return [Sensor(id=ID("s1")), Gauge(id=ID("g1"))]

    @strawberry.federation.type(name="Sensor", keys=["id"])
    class SensorLevel:
        id: ID

        @strawberry.field
        def level(self) -> int:
            return 7

        @classmethod
        def resolve_reference(cls, id: ID) -> "SensorLevel":
            return cls(id=id)

    @strawberry.federation.type(name="Gauge", keys=["id"])
    class GaugeLevel:
        id: ID

        @strawberry.field
        def level(self) -> str:
            return "high"

        @classmethod
        def resolve_reference(cls, id: ID) -> "GaugeLevel":
            return cls(id=id)

    @strawberry.type
    class LevelQuery:
        @strawberry.field
        def level_count(self) -> int:
            return 2

    return Case(
        "conflicting_fields_across",
        {
            "nodes": Schema(query=Query, types=[Sensor, Gauge]),
            "levels": Schema(query=LevelQuery, types=[SensorLevel, GaugeLevel]),
        },
        (q("{ nodes { id ... on Sensor { level } ... on Gauge { level } } }"),),
    )


def provides_on_interface() -> Case:
    """``@provides`` on a field returning an interface, with fragments on its members."""

    @strawberry.federation.interface(keys=["id"])
    class Owner:
        id: ID
        name: str

    @strawberry.federation.type(keys=["id"])
    class Person(Owner):
        @classmethod
        def resolve_reference(cls, id: ID) -> "Person":
            return cls(id=id, name=f"person {id}")

    @strawberry.federation.type(keys=["id"])
    class Company(Owner):
        @classmethod
        def resolve_reference(cls, id: ID) -> "Company":
            return cls(id=id, name=f"company {id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def owners(self) -> list[Owner]:
            return [Person(id=ID("1"), name="person 1"), Company(id=ID("2"), name="company 2")]

    @strawberry.federation.interface(name="Owner", keys=["id"])
    class PetOwner:
        id: ID
        name: str

    @strawberry.federation.type(name="Person", keys=["id"])
    class PetPerson(PetOwner):
        name: str = strawberry.federation.field(external=True)

        @classmethod
        def resolve_reference(cls, id: ID) -> "PetPerson":
            return cls(id=id, name="")

    @strawberry.federation.type(name="Company", keys=["id"])
    class PetCompany(PetOwner):
        name: str = strawberry.federation.field(external=True)

        @classmethod
        def resolve_reference(cls, id: ID) -> "PetCompany":
            return cls(id=id, name="")

    @strawberry.type
    class Pet:
        nickname: str
        owner: PetOwner = strawberry.federation.field(
            provides=["... on Person { name } ... on Company { name }"]
        )

    @strawberry.type
    class PetQuery:
        @strawberry.field
        def pets(self) -> list[Pet]:
            return [
                Pet(nickname="rex", owner=PetPerson(id=ID("1"), name="cached 1")),
                Pet(nickname="tom", owner=PetCompany(id=ID("2"), name="cached 2")),
            ]

    return Case(
        "provides_on_interface",
        {
            "owners": Schema(query=Query, types=[Person, Company]),
            "pets": Schema(query=PetQuery, types=[PetPerson, PetCompany]),
        },
        (
            q("{ pets { nickname owner { name } } }"),
            q("{ pets { owner { __typename ... on Person { name } ... on Company { id } } } }"),
            q("{ owners { name } pets { owner { id } } }"),
        ),
    )


def interface_object() -> Case:
    """An entity interface in one subgraph, seen as an ``@interfaceObject`` by another."""

    @strawberry.federation.interface(keys=["id"])
    class Account:
        id: ID
        handle: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Account":
            # An entity interface resolves a reference to its concrete type.
            if str(id).startswith("t"):
                return Team(id=id, handle=f"@{id}", size=4)
            return User(id=id, handle=f"@{id}", email=f"{id}@example.com")

    @strawberry.federation.type(keys=["id"])
    class User(Account):
        email: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "User":
            return cls(id=id, handle=f"@{id}", email=f"{id}@example.com")

    @strawberry.federation.type(keys=["id"])
    class Team(Account):
        size: int

        @classmethod
        def resolve_reference(cls, id: ID) -> "Team":
            return cls(id=id, handle=f"@{id}", size=4)

    @strawberry.type
    class Query:
        @strawberry.field
        def accounts(self) -> list[Account]:
            return [
                User(id=ID("u1"), handle="@u1", email="u1@example.com"),
                Team(id=ID("t1"), handle="@t1", size=4),
            ]  # noqa: E501

    @strawberry.federation.interface_object(name="Account", keys=["id"])
    class BilledAccount:
        id: ID

        @strawberry.field
        def plan(self) -> str:
            return "pro" if str(self.id).startswith("t") else "free"

        @classmethod
        def resolve_reference(cls, id: ID) -> "BilledAccount":
            return cls(id=id)

    @strawberry.type
    class BillingQuery:
        @strawberry.field
        def top_account(self) -> BilledAccount:
            return BilledAccount(id=ID("u1"))

    return Case(
        "interface_object",
        {
            "accounts": Schema(query=Query, types=[User, Team]),
            "billing": Schema(query=BillingQuery, types=[BilledAccount]),
        },
        (
            q("{ accounts { id handle plan } }"),
            q("{ accounts { __typename ... on User { email plan } ... on Team { size } } }"),
            q("{ topAccount { id plan } }"),
            q("{ topAccount { __typename handle plan } }"),
            q("{ topAccount { ... on User { email } ... on Team { size } } }"),
        ),
    )


CASES = [
    interface_across(),
    union_partial(),
    conflicting_member_fields(),
    conflicting_fields_across(),
    provides_on_interface(),
    interface_object(),
]
