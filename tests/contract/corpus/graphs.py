"""Shapes of graphs: ping-pong between subgraphs, circular requirements across subgraphs, many
entities, variables and @skip/@include in entity fetches, nested @provides, old-style @extends,
shareable value types known in part."""

# strawberry.federation.field used as a decorator (with directives) is untyped.
# mypy: disable-error-code="untyped-decorator"
# No ``from __future__ import annotations``: classes are local to their factory.

import strawberry

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID


def ping_pong() -> Case:
    """users (accounts) → posts (blog) → author (accounts) → posts (blog)..."""

    @strawberry.federation.type(keys=["id"])
    class User:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "User":
            return cls(id=id, name=f"user {id}")

    @strawberry.federation.type(keys=["id"])
    class Post:
        id: ID

        @strawberry.field
        def author(self) -> User:
            other = 3 - int(str(self.id).split("-")[0])
            return User(id=ID(str(other)), name=f"user {other}")

        @classmethod
        def resolve_reference(cls, id: ID) -> "Post":
            return cls(id=id)

    @strawberry.type
    class Query:
        @strawberry.field
        def users(self) -> list[User]:
            return [User(id=ID(str(i)), name=f"user {i}") for i in (1, 2)]

    @strawberry.federation.type(name="Post", keys=["id"])
    class BlogPost:
        id: ID
        title: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "BlogPost":
            return cls(id=id, title=f"title {id}")

    @strawberry.federation.type(name="User", keys=["id"])
    class Author:
        id: ID

        @strawberry.field
        def posts(self) -> list[BlogPost]:
            n = int(str(self.id))
            return [BlogPost(id=ID(f"{n}-{i}"), title=f"title {n}-{i}") for i in range(n)]

        @classmethod
        def resolve_reference(cls, id: ID) -> "Author":
            return cls(id=id)

    @strawberry.type
    class BlogQuery:
        @strawberry.field
        def posts(self) -> list[BlogPost]:
            return [BlogPost(id=ID("1-0"), title="title 1-0")]

    return Case(
        "ping_pong",
        {
            "accounts": Schema(query=Query, types=[Post]),
            "blog": Schema(query=BlogQuery, types=[Author, BlogPost]),
        },
        (
            q("{ users { name posts { id author { name posts { title author { name } } } } } }"),
            q("{ posts { author { name posts { author { id name } } } } }"),
            q("{ users { posts { author { posts { author { posts { id } } } } } } }"),
        ),
    )


def requires_across_both_ways() -> Case:
    """a.x requires b.y and b.z requires a.w: no cycle of fields, but one of subgraphs."""

    @strawberry.federation.type(keys=["id"])
    class Item:
        id: ID
        w: int
        y: int = strawberry.federation.field(external=True, default=-1)

        @strawberry.federation.field(requires=["y"])
        def x(self) -> int:
            if self.y < 0:
                raise ValueError("y was not sent")
            return self.y + 1

        @classmethod
        def resolve_reference(cls, id: ID, y: int = -1) -> "Item":
            return cls(id=id, w=int(str(id)) * 10, y=y)

    @strawberry.type
    class Query:
        @strawberry.field
        def items(self) -> list[Item]:
            return [Item(id=ID(str(i)), w=i * 10, y=-1) for i in (1, 2)]

    @strawberry.federation.type(name="Item", keys=["id"])
    class OtherItem:
        id: ID
        y: int
        w: int = strawberry.federation.field(external=True, default=-1)

        @strawberry.federation.field(requires=["w"])
        def z(self) -> int:
            if self.w < 0:
                raise ValueError("w was not sent")
            return self.w * 2

        @classmethod
        def resolve_reference(cls, id: ID, w: int = -1) -> "OtherItem":
            return cls(id=id, y=int(str(id)) + 100, w=w)

    @strawberry.type
    class OtherQuery:
        @strawberry.field
        def other_items(self) -> list[OtherItem]:
            return [OtherItem(id=ID("3"), y=103, w=-1)]

    return Case(
        "requires_across_both_ways",
        {"a": Schema(query=Query), "b": Schema(query=OtherQuery, types=[OtherItem])},
        (
            q("{ items { id x } }"),
            q("{ items { x z } }"),
            q("{ otherItems { x z w y } }"),
        ),
    )


def many_entities() -> Case:
    """Sixty entities, repeated references, variables and @skip/@include in entity fetches."""

    @strawberry.federation.type(keys=["id"])
    class Customer:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Customer":
            return cls(id=id, name=f"customer {id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def customers(self, first: int = 60) -> list[Customer]:
            return [Customer(id=ID(str(i % 25)), name=f"customer {i % 25}") for i in range(first)]

    @strawberry.federation.type(name="Customer", keys=["id"])
    class Loyal:
        id: ID

        @strawberry.field
        def points(self, multiplier: int = 1) -> int:
            return int(str(self.id)) * multiplier

        @strawberry.field
        def badges(self) -> list[str]:
            return ["gold"] if int(str(self.id)) % 3 == 0 else []

        @classmethod
        def resolve_reference(cls, id: ID) -> "Loyal":
            return cls(id=id)

    @strawberry.type
    class LoyalQuery:
        @strawberry.field
        def loyalty_version(self) -> int:
            return 3

    return Case(
        "many_entities",
        {"crm": Schema(query=Query), "loyalty": Schema(query=LoyalQuery, types=[Loyal])},
        (
            q("{ customers { id points badges } }"),
            q(
                "query M($m: Int!, $n: Int) { customers(first: $n) { "
                "name points(multiplier: $m) } }",
                {"m": 3, "n": 30},
            ),
            q(
                "query S($b: Boolean!) { customers(first: 5) { id "
                "badges @include(if: $b) points @skip(if: $b) } }",
                {"b": True},
            ),
            q(
                "query S($b: Boolean!) { customers(first: 5) { id "
                "badges @include(if: $b) points @skip(if: $b) } }",
                {"b": False},
            ),
        ),
    )


def provides_nested() -> Case:
    """``@provides(fields: "owner { name }")`` two levels down."""

    @strawberry.federation.type(keys=["id"])
    class Owner:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Owner":
            return cls(id=id, name=f"owner {id}")

    @strawberry.federation.type(keys=["id"])
    class Store:
        id: ID
        city: str
        owner: Owner

        @classmethod
        def resolve_reference(cls, id: ID) -> "Store":
            return cls(id=id, city="Lyon", owner=Owner(id=ID("o" + str(id)), name=f"owner o{id}"))

    @strawberry.type
    class Query:
        @strawberry.field
        def stores(self) -> list[Store]:
            return [Store.resolve_reference(ID(str(i))) for i in (1, 2)]

    @strawberry.federation.type(name="Owner", keys=["id"])
    class OwnerRef:
        id: ID
        name: str = strawberry.federation.field(external=True)

    @strawberry.federation.type(name="Store", keys=["id"])
    class StoreRef:
        id: ID
        owner: OwnerRef = strawberry.federation.field(external=True)

    @strawberry.type
    class Visit:
        day: str
        store: StoreRef = strawberry.federation.field(provides=["owner { name }"])

    @strawberry.type
    class VisitQuery:
        @strawberry.field
        def visits(self) -> list[Visit]:
            return [
                Visit(
                    day=f"day {i}",
                    store=StoreRef(
                        id=ID(str(i)), owner=OwnerRef(id=ID(f"o{i}"), name=f"cached o{i}")
                    ),
                )
                for i in (1, 2)
            ]

    return Case(
        "provides_nested",
        {
            "stores": Schema(query=Query),
            "visits": Schema(query=VisitQuery, types=[OwnerRef, StoreRef]),
        },
        (
            q("{ visits { day store { owner { name } } } }"),
            q("{ visits { store { city owner { id name } } } }"),
            q("{ stores { owner { name } } visits { store { id } } }"),
        ),
    )


def shareable_value_partial() -> Case:
    """A shareable value type whose fields differ between the two subgraphs that return it."""

    @strawberry.federation.type(shareable=True)
    class Money:
        amount: int
        currency: str

    @strawberry.federation.type(keys=["id"])
    class Order:
        id: ID
        total: Money = strawberry.federation.field(shareable=True)

        @classmethod
        def resolve_reference(cls, id: ID) -> "Order":
            return cls(id=id, total=Money(amount=int(str(id)) * 7, currency="EUR"))

    @strawberry.type
    class Query:
        @strawberry.field
        def orders(self) -> list[Order]:
            return [Order.resolve_reference(ID(str(i))) for i in (1, 2)]

    @strawberry.federation.type(name="Money", shareable=True)
    class FullMoney:
        amount: int
        currency: str
        formatted: str

    @strawberry.federation.type(name="Order", keys=["id"])
    class PaidOrder:
        id: ID
        total: FullMoney = strawberry.federation.field(shareable=True)

        @classmethod
        def resolve_reference(cls, id: ID) -> "PaidOrder":
            amount = int(str(id)) * 7
            total = FullMoney(amount=amount, currency="EUR", formatted=f"€{amount}")
            return cls(id=id, total=total)

    @strawberry.type
    class PayQuery:
        @strawberry.field
        def last_paid(self) -> PaidOrder:
            return PaidOrder.resolve_reference(ID("2"))

    return Case(
        "shareable_value_partial",
        {"orders": Schema(query=Query), "payments": Schema(query=PayQuery, types=[PaidOrder])},
        (
            q("{ orders { id total { amount } } }"),
            q("{ orders { total { amount formatted } } }"),
            q("{ lastPaid { total { formatted currency } } orders { total { currency } } }"),
        ),
    )


def extends_old_style() -> Case:
    """Federation 1 style: ``extend type`` with ``@extends`` and an ``@external`` key."""

    @strawberry.federation.type(keys=["upc"])
    class Product:
        upc: str
        title: str

        @classmethod
        def resolve_reference(cls, upc: str) -> "Product":
            return cls(upc=upc, title=f"title {upc}")

    @strawberry.type
    class Query:
        @strawberry.field
        def top(self) -> list[Product]:
            return [Product(upc=u, title=f"title {u}") for u in ("a", "b")]

    @strawberry.federation.type(name="Product", keys=["upc"], extend=True)
    class ExtProduct:
        upc: str = strawberry.federation.field(external=True)

        @strawberry.field
        def in_stock(self) -> bool:
            return self.upc == "a"

        @classmethod
        def resolve_reference(cls, upc: str) -> "ExtProduct":
            return cls(upc=upc)

    @strawberry.type
    class StockQuery:
        @strawberry.field
        def restock(self) -> list[ExtProduct]:
            return [ExtProduct(upc="b")]

    return Case(
        "extends_old_style",
        {"products": Schema(query=Query), "stock": Schema(query=StockQuery, types=[ExtProduct])},
        (
            q("{ top { title inStock } }"),
            q("{ restock { upc title inStock } }"),
        ),
    )


CASES = [
    ping_pong(),
    requires_across_both_ways(),
    many_entities(),
    provides_nested(),
    shareable_value_partial(),
    extends_old_style(),
]
