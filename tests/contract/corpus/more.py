"""More shapes, one feature each: a single subgraph, interface objects in lists and nested,
overrides of several fields, shareable root fields with arguments, mutations whose results need
requirements, deep value types, keys only, null entities in lists."""

# strawberry.federation.field used as a decorator (with directives) is untyped.
# mypy: disable-error-code="untyped-decorator"
# No ``from __future__ import annotations``: classes are local to their factory.

from typing import Annotated

import strawberry
from strawberry.federation.schema_directives import Override

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID


def single_subgraph() -> Case:
    """One subgraph: aliases, fragments, variables, unions and interfaces without hops."""

    @strawberry.interface
    class Animal:
        name: str

    @strawberry.type
    class Dog(Animal):
        barks: bool

    @strawberry.type
    class Cat(Animal):
        lives: int

    Pet = Annotated[Dog | Cat, strawberry.union("Pet")]

    @strawberry.type
    class Query:
        @strawberry.field
        def animals(self, first: int = 3) -> list[Animal]:
            found: list[Animal] = [Dog(name="rex", barks=True), Cat(name="tom", lives=9)]
            return (found * 2)[:first]

        @strawberry.field
        def pets(self) -> list[Pet]:
            return [Cat(name="kit", lives=7), Dog(name="ace", barks=False)]

    return Case(
        "single_subgraph",
        {"zoo": Schema(query=Query)},
        (
            q("{ animals { name ... on Dog { barks } ... on Cat { lives } } }"),
            q(
                "query A($n: Int) { a: animals(first: $n) { n: name } b: pets { __typename } }",
                {"n": 1},
            ),
            q("query { pets { ...P } } fragment P on Pet { ... on Cat { name lives } }"),
            q("{ __typename animals(first: 0) { name } }"),
        ),
    )


def _accounts_owner() -> Schema:
    @strawberry.federation.interface(keys=["id"])
    class Account:
        id: ID
        handle: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Account":
            if str(id).startswith("t"):
                return Team(id=id, handle=f"@{id}", size=len(str(id)))
            return User(id=id, handle=f"@{id}", email=f"{id}@example.com")

    @strawberry.federation.type(keys=["id"])
    class User(Account):
        email: str

    @strawberry.federation.type(keys=["id"])
    class Team(Account):
        size: int

    @strawberry.type
    class Query:
        @strawberry.field
        def accounts(self) -> list[Account]:
            return [
                User(id=ID("u1"), handle="@u1", email="u1@example.com"),
                Team(id=ID("t22"), handle="@t22", size=3),
                User(id=ID("u3"), handle="@u3", email="u3@example.com"),
            ]

    return Schema(query=Query, types=[User, Team])


def interface_object_lists() -> Case:
    """An interface object returned in lists and nested in another type of its subgraph."""

    @strawberry.federation.interface_object(name="Account", keys=["id"])
    class Account:
        id: ID

        @strawberry.field
        def seats(self) -> int:
            return len(str(self.id)) * 2

        @classmethod
        def resolve_reference(cls, id: ID) -> "Account":
            return cls(id=id)

    @strawberry.type
    class Invoice:
        number: str
        account: Account | None

    @strawberry.type
    class Query:
        @strawberry.field
        def invoices(self) -> list[Invoice]:
            return [
                Invoice(number="1", account=Account(id=ID("t22"))),
                Invoice(number="2", account=None),
                Invoice(number="3", account=Account(id=ID("u1"))),
            ]

        @strawberry.field
        def big_accounts(self) -> list[Account]:
            return [Account(id=ID("u3")), Account(id=ID("t22"))]

    return Case(
        "interface_object_lists",
        {"accounts": _accounts_owner(), "billing": Schema(query=Query, types=[Account])},
        (
            q("{ invoices { number account { id seats } } }"),
            q("{ invoices { account { __typename handle ... on Team { size } } } }"),
            q("{ bigAccounts { seats ... on User { email } } accounts { seats } }"),
            q("{ accounts { ... on Team { seats size } ... on User { handle } } }"),
        ),
        divergences={
            "invoices { number account { __typename handle seats id ... on Team": "Apollo "
            "answers every invoice's account null, without an error; we answer the accounts"
        },
    )


def interface_object_requires() -> Case:
    """A field of an interface object that requires a field of the interface's owner."""

    @strawberry.federation.interface_object(name="Account", keys=["id"])
    class Account:
        id: ID
        handle: str = strawberry.federation.field(external=True, default="")

        @strawberry.federation.field(requires=["handle"])
        def banner(self) -> str:
            return f"welcome {self.handle or '?'}"

        @classmethod
        def resolve_reference(cls, id: ID, handle: str = "") -> "Account":
            return cls(id=id, handle=handle)

    @strawberry.type
    class Query:
        @strawberry.field
        def greeting_version(self) -> int:
            return 1

    return Case(
        "interface_object_requires",
        {"accounts": _accounts_owner(), "greetings": Schema(query=Query, types=[Account])},
        (
            q("{ accounts { id banner } }"),
            q("{ accounts { __typename ... on Team { banner size } } }"),
        ),
        divergences={
            "banner": "Apollo does not send the handle that the interface object's banner "
            "@requires (the subgraph answers 'welcome ?'); we send it"
        },
    )


def override_many() -> Case:
    """A whole entity's fields moved with @override, one of them back with a label."""

    @strawberry.federation.type(keys=["id"])
    class Store:
        id: ID

        @strawberry.field
        def city(self) -> str:
            return "old city"

        @strawberry.field
        def phone(self) -> str:
            return "old phone"

        @strawberry.field
        def hours(self) -> str:
            return "old hours"

        @classmethod
        def resolve_reference(cls, id: ID) -> "Store":
            return cls(id=id)

    @strawberry.type
    class Query:
        @strawberry.field
        def stores(self) -> list[Store]:
            return [Store(id=ID("s1")), Store(id=ID("s2"))]

    @strawberry.federation.type(name="Store", keys=["id"])
    class NewStore:
        id: ID

        @strawberry.federation.field(directives=[Override(override_from="old")])
        def city(self) -> str:
            return f"city of {self.id}"

        @strawberry.federation.field(directives=[Override(override_from="old")])
        def phone(self) -> str:
            return f"phone of {self.id}"

        @strawberry.federation.field(directives=[Override(override_from="old", label="hours")])
        def hours(self) -> str:
            return "new hours"

        @classmethod
        def resolve_reference(cls, id: ID) -> "NewStore":
            return cls(id=id)

    @strawberry.type
    class NewQuery:
        @strawberry.field
        def flagship(self) -> NewStore:
            return NewStore(id=ID("s9"))

    return Case(
        "override_many",
        {"old": Schema(query=Query), "new": Schema(query=NewQuery, types=[NewStore])},
        (
            q("{ stores { id city phone hours } }"),
            q("{ flagship { city hours } }"),
            q("{ stores { hours } flagship { phone } }"),
        ),
    )


def shareable_root_arguments() -> Case:
    """A shareable root field with arguments, resolved by either subgraph."""

    @strawberry.federation.type(keys=["code"])
    class Country:
        code: str

        @strawberry.federation.field(shareable=True)
        def name(self) -> str:
            return {"FR": "France", "DE": "Germany"}.get(self.code, "?")

        @classmethod
        def resolve_reference(cls, code: str) -> "Country":
            return cls(code=code)

    @strawberry.type
    class Query:
        @strawberry.federation.field(shareable=True)
        def country(self, code: str) -> Country | None:
            return Country(code=code) if code in ("FR", "DE") else None

    @strawberry.federation.type(name="Country", keys=["code"])
    class TaxCountry:
        code: str

        @strawberry.federation.field(shareable=True)
        def name(self) -> str:
            return {"FR": "France", "DE": "Germany"}.get(self.code, "?")

        @strawberry.field
        def vat(self) -> int:
            return {"FR": 20, "DE": 19}.get(self.code, 0)

        @classmethod
        def resolve_reference(cls, code: str) -> "TaxCountry":
            return cls(code=code)

    @strawberry.type
    class TaxQuery:
        @strawberry.federation.field(shareable=True)
        def country(self, code: str) -> TaxCountry | None:
            return TaxCountry(code=code) if code in ("FR", "DE") else None

    return Case(
        "shareable_root_arguments",
        {"geo": Schema(query=Query), "tax": Schema(query=TaxQuery, types=[TaxCountry])},
        (
            q('{ country(code: "FR") { name } }'),
            q('{ country(code: "DE") { name vat } }'),
            q("query C($c: String!) { country(code: $c) { vat code } }", {"c": "FR"}),
            q('{ country(code: "XX") { vat } }'),
        ),
        arguments={"Query.country": {"code": "DE"}},
    )


def mutation_requires() -> Case:
    """A mutation's result completed with a field that requires another subgraph's field."""

    @strawberry.federation.type(keys=["id"])
    class Parcel:
        id: ID
        grams: int

        @classmethod
        def resolve_reference(cls, id: ID) -> "Parcel":
            return cls(id=id, grams=len(str(id)) * 250)

    @strawberry.type
    class Query:
        @strawberry.field
        def parcels(self) -> list[Parcel]:
            return [Parcel.resolve_reference(ID("p1"))]

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def send(self, id: ID) -> Parcel:
            return Parcel.resolve_reference(id)

    @strawberry.federation.type(name="Parcel", keys=["id"])
    class PricedParcel:
        id: ID
        grams: int = strawberry.federation.field(external=True, default=-1)

        @strawberry.federation.field(requires=["grams"])
        def postage(self) -> int:
            if self.grams < 0:
                raise ValueError("grams were not sent")
            return self.grams // 100

        @classmethod
        def resolve_reference(cls, id: ID, grams: int = -1) -> "PricedParcel":
            return cls(id=id, grams=grams)

    @strawberry.type
    class PostQuery:
        @strawberry.field
        def postage_base(self) -> int:
            return 1

    return Case(
        "mutation_requires",
        {
            "parcels": Schema(query=Query, mutation=Mutation),
            "post": Schema(query=PostQuery, types=[PricedParcel]),
        },
        (
            q('mutation { send(id: "p123") { id postage } }'),
            q(
                'mutation S($id: ID!) { a: send(id: $id) { postage } b: send(id: "p") { grams } }',
                {"id": "p12"},
            ),
            q("{ parcels { postage } }"),
        ),
    )


def deep_value_types() -> Case:
    """Value types three levels deep under an entity completed by another subgraph."""

    @strawberry.type
    class Street:
        name: str
        number: int

    @strawberry.type
    class Address:
        street: Street
        city: str

    @strawberry.type
    class Contact:
        address: Address | None
        phones: list[str]

    @strawberry.federation.type(keys=["id"])
    class Supplier:
        id: ID

        @strawberry.field
        def contact(self) -> Contact:
            n = int(str(self.id)[1:])
            address = Address(street=Street(name="Main", number=n), city="Paris") if n % 2 else None
            return Contact(address=address, phones=[f"+33 {n}"] * n)

        @classmethod
        def resolve_reference(cls, id: ID) -> "Supplier":
            return cls(id=id)

    @strawberry.type
    class ContactQuery:
        @strawberry.field
        def contacts_version(self) -> int:
            return 2

    @strawberry.federation.type(name="Supplier", keys=["id"])
    class Vendor:
        id: ID
        name: str

    @strawberry.type
    class Query:
        @strawberry.field
        def suppliers(self) -> list[Vendor]:
            return [Vendor(id=ID(f"s{i}"), name=f"supplier {i}") for i in (1, 2, 3)]

    return Case(
        "deep_value_types",
        {
            "suppliers": Schema(query=Query),
            "contacts": Schema(query=ContactQuery, types=[Supplier]),
        },
        (
            q("{ suppliers { name contact { address { city street { name number } } phones } } }"),
            q("{ suppliers { contact { address { street { number } } } } }"),
        ),
    )


def keys_only() -> Case:
    """Clients asking only key fields and __typename need no entity fetch."""

    @strawberry.federation.type(keys=["id"])
    class Tag:
        id: ID
        label: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Tag | None":
            return cls(id=id, label=f"tag {id}") if str(id) != "x" else None

    @strawberry.type
    class Query:
        @strawberry.field
        def tag(self, id: ID) -> Tag | None:
            return Tag.resolve_reference(id)

    @strawberry.federation.type(name="Tag", keys=["id"])
    class TagRef:
        id: ID

    @strawberry.type
    class Note:
        text: str
        tags: list[TagRef | None]

    @strawberry.type
    class NoteQuery:
        @strawberry.field
        def notes(self) -> list[Note]:
            return [
                Note(text="a", tags=[TagRef(id=ID("1")), None, TagRef(id=ID("x"))]),
                Note(text="b", tags=[]),
            ]

    return Case(
        "keys_only",
        {"tags": Schema(query=Query), "notes": Schema(query=NoteQuery, types=[TagRef])},
        (
            q("{ notes { text tags { id __typename } } }"),
            q("{ notes { tags { label } } }"),
            q("{ notes { tags { id label } } }"),
        ),
        arguments={"Query.tag": {"id": "2"}},
    )


CASES = [
    single_subgraph(),
    interface_object_lists(),
    interface_object_requires(),
    override_many(),
    shareable_root_arguments(),
    mutation_requires(),
    deep_value_types(),
    keys_only(),
]
