"""Entities and keys: single, several, compound, nested, unresolvable, chains of hops."""

# No ``from __future__ import annotations``: the subgraphs' classes are local to their factory,
# so strawberry must see the annotations as objects.

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID

NAMES = {"1": "Lamp", "2": "Desk", "3": "Chair", "4": "Shelf"}
PRICES = {"1": 30, "2": 120, "3": 45, "4": 80}


def key_basic() -> Case:
    @strawberry.federation.type(keys=["id"])
    class Product:
        id: ID
        name: str
        price: int

        @classmethod
        def resolve_reference(cls, id: ID) -> "Product | None":
            return make(str(id))

    def make(pid: str) -> Product | None:
        if pid not in NAMES:
            return None
        return Product(id=ID(pid), name=NAMES[pid], price=PRICES[pid])

    @strawberry.type
    class Query:
        @strawberry.field
        def products(self) -> list[Product]:
            return [p for p in map(make, NAMES) if p]

        @strawberry.field
        def product(self, id: ID) -> Product | None:
            return make(str(id))

    @strawberry.type
    class Review:
        body: str
        stars: int

    @strawberry.federation.type(name="Product", keys=["id"])
    class ReviewedProduct:
        id: ID

        @strawberry.field
        def reviews(self, first: int = 2) -> list[Review]:
            n = int(str(self.id))
            return [Review(body=f"review {i} of {n}", stars=(n + i) % 5) for i in range(n)][:first]

        @classmethod
        def resolve_reference(cls, id: ID) -> "ReviewedProduct":
            return cls(id=id)

    @strawberry.type
    class ReviewQuery:
        @strawberry.field
        def top_reviewed(self) -> list[ReviewedProduct]:
            return [ReviewedProduct(id=ID("3")), ReviewedProduct(id=ID("9"))]

    return Case(
        "key_basic",
        {
            "products": Schema(query=Query),
            "reviews": Schema(query=ReviewQuery, types=[ReviewedProduct]),
        },
        (
            q("{ products { id name reviews { body stars } } }"),
            q("{ products { name reviews(first: 1) { stars } } }"),
            q('{ product(id: "2") { price reviews { body } } }'),
            q('{ product(id: "7") { price reviews { body } } }'),
            # Product 9 is not known to products: its name is null, and name is non-null.
            q("{ topReviewed { id reviews { stars } } }"),
            q("{ topReviewed { id name price } }"),
            q("{ topReviewed { __typename id } products { __typename } }"),
            q(
                "query R($n: Int!) { products { a: reviews(first: $n) { stars } "
                "b: reviews(first: 1) { body } } }",
                {"n": 3},
            ),
        ),
    )


def keys_several() -> Case:
    """Product has two keys; each other subgraph knows it by only one of them."""

    @strawberry.federation.type(keys=["id", "sku"])
    class Product:
        id: ID
        sku: str
        name: str

        @classmethod
        def resolve_reference(cls, **key: str) -> "Product | None":
            pid = key.get("id") or next((p for p in NAMES if f"SKU-{p}" == key.get("sku")), None)
            return Product(id=ID(pid), sku=f"SKU-{pid}", name=NAMES[pid]) if pid else None

    @strawberry.type
    class Query:
        @strawberry.field
        def products(self) -> list[Product]:
            return [Product(id=ID(p), sku=f"SKU-{p}", name=NAMES[p]) for p in NAMES]

    @strawberry.federation.type(name="Product", keys=["sku"])
    class StockProduct:
        sku: str

        @strawberry.field
        def stock(self) -> int:
            return len(self.sku) * 3

        @classmethod
        def resolve_reference(cls, sku: str) -> "StockProduct":
            return cls(sku=sku)

    @strawberry.type
    class StockQuery:
        @strawberry.field
        def low_stock(self) -> list[StockProduct]:
            return [StockProduct(sku="SKU-2"), StockProduct(sku="SKU-4")]

    @strawberry.federation.type(name="Product", keys=["id"])
    class PricedProduct:
        id: ID

        @strawberry.field
        def price(self) -> int:
            return PRICES.get(str(self.id), 0)

        @classmethod
        def resolve_reference(cls, id: ID) -> "PricedProduct":
            return cls(id=id)

    @strawberry.type
    class PriceQuery:
        @strawberry.field
        def cheapest(self) -> PricedProduct:
            return PricedProduct(id=ID("1"))

    return Case(
        "keys_several",
        {
            "catalog": Schema(query=Query),
            "stock": Schema(query=StockQuery, types=[StockProduct]),
            "prices": Schema(query=PriceQuery, types=[PricedProduct]),
        },
        (
            q("{ products { id sku stock price } }"),
            # stock knows the sku only: the id comes from catalog, then the price from prices.
            q("{ lowStock { sku price } }"),
            q("{ lowStock { sku name id } }"),
            q("{ cheapest { price stock name } }"),
            q("{ cheapest { sku } lowStock { id } }"),
        ),
    )


def key_compound_nested() -> Case:
    """A compound key with a nested object: ``id org { id }``."""

    @strawberry.federation.type(shareable=True)
    class Org:
        id: ID

    @strawberry.federation.type(keys=["id org { id }"])
    class User:
        id: ID
        org: Org
        name: str

        @classmethod
        def resolve_reference(cls, id: ID, org: dict[str, str]) -> "User":
            return User(id=id, org=Org(id=ID(org["id"])), name=f"user {id}@{org['id']}")

    @strawberry.type
    class Query:
        @strawberry.field
        def users(self) -> list[User]:
            return [
                User(id=ID(str(i)), org=Org(id=ID(o)), name=f"user {i}@{o}")
                for i, o in ((1, "a"), (2, "a"), (1, "b"))
            ]

    @strawberry.federation.type(name="User", keys=["id org { id }"])
    class BillingUser:
        id: ID
        org: Org

        @strawberry.field
        def balance(self) -> int:
            return len(str(self.id)) * 10 + (5 if str(self.org.id) == "b" else 0)

        @classmethod
        def resolve_reference(cls, id: ID, org: dict[str, str]) -> "BillingUser":
            return BillingUser(id=id, org=Org(id=ID(org["id"])))

    @strawberry.type
    class BillingQuery:
        @strawberry.field
        def debtors(self) -> list[BillingUser]:
            return [BillingUser(id=ID("2"), org=Org(id=ID("a")))]

    return Case(
        "key_compound_nested",
        {
            "users": Schema(query=Query),
            "billing": Schema(query=BillingQuery, types=[BillingUser]),
        },
        (
            q("{ users { id org { id } name balance } }"),
            q("{ users { balance } }"),
            q("{ debtors { name balance org { id } } }"),
        ),
    )


def key_unresolvable() -> Case:
    """A subgraph references an entity it cannot resolve (``resolvable: false``)."""

    @strawberry.federation.type(keys=["id"])
    class Author:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Author | None":
            return Author(id=id, name=f"author {id}") if str(id) != "0" else None

    @strawberry.type
    class Query:
        @strawberry.field
        def author(self, id: ID) -> Author | None:
            return Author(id=id, name=f"author {id}")

    @strawberry.federation.type(name="Author", keys=[Key(fields=FieldSet("id"), resolvable=False)])
    class AuthorRef:
        id: ID

    @strawberry.type
    class Book:
        title: str
        author: AuthorRef | None

    @strawberry.type
    class BookQuery:
        @strawberry.field
        def books(self) -> list[Book]:
            return [
                Book(title="One", author=AuthorRef(id=ID("1"))),
                Book(title="Two", author=AuthorRef(id=ID("0"))),
                Book(title="Three", author=None),
            ]

    return Case(
        "key_unresolvable",
        {"authors": Schema(query=Query), "books": Schema(query=BookQuery)},
        (
            q("{ books { title author { id } } }"),
            q("{ books { title author { id name } } }"),
            q("{ books { author { name } } }"),
        ),
        arguments={"Query.author": {"id": "3"}},
    )


def chain_three() -> Case:
    """A → B → C: each hop needs the key the previous subgraph returned."""

    @strawberry.federation.type(keys=["id"])
    class Order:
        id: ID
        number: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Order":
            return Order(id=id, number=f"N-{id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def orders(self) -> list[Order]:
            return [Order(id=ID(str(i)), number=f"N-{i}") for i in range(1, 4)]

    @strawberry.federation.type(keys=["id"])
    class Shipment:
        id: ID
        carrier: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Shipment":
            return Shipment(id=id, carrier="ups" if int(str(id)[1:]) % 2 else "dhl")

    @strawberry.federation.type(name="Order", keys=["id"])
    class ShippedOrder:
        id: ID

        @strawberry.field
        def shipment(self) -> Shipment | None:
            if str(self.id) == "3":
                return None
            return Shipment(id=ID(f"s{self.id}"), carrier="ups" if int(str(self.id)) % 2 else "dhl")

        @classmethod
        def resolve_reference(cls, id: ID) -> "ShippedOrder":
            return cls(id=id)

    @strawberry.type
    class ShipQuery:
        @strawberry.field
        def shipments(self) -> list[Shipment]:
            return [Shipment(id=ID("s1"), carrier="ups")]

    @strawberry.type
    class Event:
        at: str
        what: str

    @strawberry.federation.type(name="Shipment", keys=["id"])
    class TrackedShipment:
        id: ID

        @strawberry.field
        def events(self) -> list[Event]:
            return [Event(at=f"day {i}", what=f"{self.id} moved") for i in range(2)]

        @classmethod
        def resolve_reference(cls, id: ID) -> "TrackedShipment":
            return cls(id=id)

    @strawberry.type
    class TrackQuery:
        @strawberry.field
        def tracked(self) -> list[TrackedShipment]:
            return [TrackedShipment(id=ID("s2"))]

    return Case(
        "chain_three",
        {
            "orders": Schema(query=Query),
            "shipping": Schema(query=ShipQuery, types=[ShippedOrder]),
            "tracking": Schema(query=TrackQuery, types=[TrackedShipment]),
        },
        (
            q("{ orders { number shipment { carrier events { at what } } } }"),
            q("{ orders { shipment { events { what } } } }"),
            q("{ tracked { carrier events { at } } }"),
            q("{ shipments { id events { what } } orders { id } }"),
        ),
    )


CASES = [key_basic(), keys_several(), key_compound_nested(), key_unresolvable(), chain_three()]
