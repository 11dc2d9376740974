# strawberry.federation.field used as a decorator (with directives) is untyped.
# mypy: disable-error-code="untyped-decorator"
"""Shared fields: ``@shareable`` root fields and value types, ``@provides``, ``@override``,
``@inaccessible``, mutations across subgraphs."""

# No ``from __future__ import annotations``: classes are local to their factory.

import strawberry
from strawberry.federation.schema_directives import Override

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID


def shareable_root() -> Case:
    """``Query.featured`` and ``Query.version`` are resolved by both subgraphs."""

    @strawberry.federation.type(keys=["id"])
    class Product:
        id: ID
        name: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "Product":
            return cls(id=id, name=f"product {id}")

    @strawberry.federation.type(shareable=True)
    class Banner:
        title: str
        product: Product

    @strawberry.type
    class Query:
        @strawberry.federation.field(shareable=True)
        def featured(self) -> Banner:
            return Banner(title="sale", product=Product(id=ID("1"), name="product 1"))

        @strawberry.federation.field(shareable=True)
        def version(self) -> str:
            return "1"

        @strawberry.field
        def catalog(self) -> list[Product]:
            return [Product(id=ID(str(i)), name=f"product {i}") for i in (1, 2)]

    @strawberry.federation.type(name="Product", keys=["id"])
    class StockProduct:
        id: ID

        @strawberry.field
        def stock(self) -> int:
            return int(str(self.id)) * 4

        @classmethod
        def resolve_reference(cls, id: ID) -> "StockProduct":
            return cls(id=id)

    @strawberry.federation.type(name="Banner", shareable=True)
    class StockBanner:
        title: str
        product: StockProduct

    @strawberry.type
    class StockQuery:
        @strawberry.federation.field(shareable=True)
        def featured(self) -> StockBanner:
            return StockBanner(title="sale", product=StockProduct(id=ID("1")))

        @strawberry.federation.field(shareable=True)
        def version(self) -> str:
            return "1"

    return Case(
        "shareable_root",
        {
            "catalog": Schema(query=Query),
            "stock": Schema(query=StockQuery, types=[StockProduct]),
        },
        (
            q("{ version }"),
            q("{ featured { title } }"),
            q("{ featured { title product { id name stock } } }"),
            q("{ featured { product { stock } } version catalog { stock } }"),
            q("{ a: featured { title } b: featured { product { name } } }"),
        ),
    )


def provides_object() -> Case:
    """``Review.author @provides(fields: "name")``: no hop to users for the name."""

    @strawberry.federation.type(keys=["id"])
    class User:
        id: ID
        name: str
        email: str

        @classmethod
        def resolve_reference(cls, id: ID) -> "User":
            return cls(id=id, name=f"user {id}", email=f"u{id}@example.com")

    @strawberry.type
    class Query:
        @strawberry.field
        def me(self) -> User:
            return User(id=ID("1"), name="user 1", email="u1@example.com")

    @strawberry.federation.type(name="User", keys=["id"])
    class Author:
        id: ID
        # Provided names are the reviews' own copy (stale on purpose: it shows who answered).
        name: str = strawberry.federation.field(external=True)

    @strawberry.type
    class Review:
        body: str
        author: Author = strawberry.federation.field(provides=["name"])
        editor: Author | None = None

    @strawberry.type
    class ReviewQuery:
        @strawberry.field
        def reviews(self) -> list[Review]:
            return [
                Review(
                    body=f"review {i}",
                    author=Author(id=ID(str(i)), name=f"cached {i}"),
                    editor=Author(id=ID("9"), name="cached 9") if i == 2 else None,
                )
                for i in (1, 2)
            ]

    return Case(
        "provides_object",
        {"users": Schema(query=Query), "reviews": Schema(query=ReviewQuery, types=[Author])},
        (
            q("{ reviews { body author { name } } }"),
            q("{ reviews { author { name email } } }"),
            q("{ reviews { editor { name } } }"),
            q("{ reviews { author { id } editor { id email } } me { name } }"),
        ),
    )


def override_field() -> Case:
    """``Product.price`` moved from legacy to pricing with ``@override(from: "legacy")``."""

    @strawberry.federation.type(keys=["id"])
    class Product:
        id: ID
        name: str

        @strawberry.federation.field(shareable=False)
        def price(self) -> int:
            return -1

        @classmethod
        def resolve_reference(cls, id: ID) -> "Product":
            return cls(id=id, name=f"product {id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def products(self) -> list[Product]:
            return [Product(id=ID(str(i)), name=f"product {i}") for i in (1, 2, 3)]

    @strawberry.federation.type(name="Product", keys=["id"])
    class PricedProduct:
        id: ID

        @strawberry.federation.field(directives=[Override(override_from="legacy")])
        def price(self) -> int:
            return int(str(self.id)) * 100

        @strawberry.federation.field(directives=[Override(override_from="legacy", label="beta")])
        def name(self) -> str:
            return f"new name {self.id}"

        @classmethod
        def resolve_reference(cls, id: ID) -> "PricedProduct":
            return cls(id=id)

    @strawberry.type
    class PriceQuery:
        @strawberry.field
        def cheapest(self) -> PricedProduct:
            return PricedProduct(id=ID("1"))

    return Case(
        "override_field",
        {
            "legacy": Schema(query=Query),
            "pricing": Schema(query=PriceQuery, types=[PricedProduct]),
        },
        (
            q("{ products { id price } }"),
            # A progressive override's label is off unless the gateway enables it: the field
            # stays with the subgraph it was taken from.
            q("{ products { name } cheapest { name price } }"),
            q("{ cheapest { price id } }"),
        ),
    )


def inaccessible_parts() -> Case:
    """Inaccessible fields are hidden from clients but still usable for joins."""

    @strawberry.federation.type(keys=["id"])
    class Account:
        id: ID
        handle: str
        secret: str = strawberry.federation.field(inaccessible=True)

        @classmethod
        def resolve_reference(cls, id: ID) -> "Account":
            return cls(id=id, handle=f"@{id}", secret=f"s{id}")

    @strawberry.type
    class Query:
        @strawberry.field
        def accounts(self) -> list[Account]:
            return [Account(id=ID(str(i)), handle=f"@{i}", secret=f"s{i}") for i in (1, 2)]

    @strawberry.federation.type(name="Account", keys=["id"])
    class Audited:
        id: ID
        secret: str = strawberry.federation.field(external=True, default="")

        @strawberry.federation.field(requires=["secret"])
        def fingerprint(self) -> str:
            return self.secret[::-1] or "none"

        @classmethod
        def resolve_reference(cls, id: ID, secret: str = "") -> "Audited":
            return cls(id=id, secret=secret)

    @strawberry.type
    class AuditQuery:
        @strawberry.field
        def audit_size(self) -> int:
            return 2

    return Case(
        "inaccessible_parts",
        {"accounts": Schema(query=Query), "audit": Schema(query=AuditQuery, types=[Audited])},
        (
            q("{ accounts { handle fingerprint } }"),
            q("{ accounts { secret } }"),
            q("{ auditSize accounts { id } }"),
        ),
    )


def mutations_across() -> Case:
    """Mutations of two subgraphs run in order; their results are completed by entity fetches."""

    counter = {"n": 0}

    @strawberry.federation.type(keys=["id"])
    class Cart:
        id: ID

        @strawberry.field
        def items(self) -> int:
            return counter["n"]

        @classmethod
        def resolve_reference(cls, id: ID) -> "Cart":
            return cls(id=id)

    @strawberry.type
    class Query:
        @strawberry.field
        def cart(self) -> Cart:
            return Cart(id=ID("c1"))

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def add_item(self) -> Cart:
            counter["n"] += 1
            return Cart(id=ID("c1"))

        @strawberry.mutation
        def reset(self) -> int:
            counter["n"] = 0
            return 0

    @strawberry.federation.type(name="Cart", keys=["id"])
    class PricedCart:
        id: ID

        @strawberry.field
        def total(self) -> int:
            return counter["n"] * 5

        @classmethod
        def resolve_reference(cls, id: ID) -> "PricedCart":
            return cls(id=id)

    @strawberry.type
    class PriceQuery:
        @strawberry.field
        def currency(self) -> str:
            return "EUR"

    @strawberry.type
    class PriceMutation:
        @strawberry.mutation
        def checkout(self) -> PricedCart:
            return PricedCart(id=ID("c1"))

    return Case(
        "mutations_across",
        {
            "carts": Schema(query=Query, mutation=Mutation),
            "prices": Schema(query=PriceQuery, mutation=PriceMutation, types=[PricedCart]),
        },
        (
            # The counter lives in this process, which both gateways ask in turn: each
            # mutation starts from a reset so that both see the same state.
            q("mutation { reset a: addItem { items total } b: addItem { items } }"),
            q("mutation { reset addItem { id } checkout { total items } }"),
            q("{ cart { items total } currency }"),
        ),
    )


CASES = [
    shareable_root(),
    provides_object(),
    override_field(),
    inaccessible_parts(),
    mutations_across(),
]
