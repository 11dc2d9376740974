# strawberry.federation.field used as a decorator (with directives) is untyped.
# mypy: disable-error-code="untyped-decorator"
"""``@requires``: from the parent fetch, from another subgraph, with arguments, nested, chained."""

# No ``from __future__ import annotations``: classes are local to their factory.

import strawberry

from tests.contract.corpus import Case, q

Schema = strawberry.federation.Schema
ID = strawberry.ID

WEIGHTS = {"1": 2, "2": 30, "3": 7, "4": 12}


def _products(with_dimensions: bool = False) -> Schema:
    """The owner of Product: id, name, weight (and dimensions, a shareable value type)."""

    @strawberry.federation.type(shareable=True)
    class Dimensions:
        size: str
        weight: int

    @strawberry.federation.type(keys=["id"])
    class Product:
        id: ID
        name: str
        weight: int
        dimensions: Dimensions | None

        @classmethod
        def resolve_reference(cls, id: ID) -> "Product | None":
            return make(str(id))

    def make(pid: str) -> Product | None:
        if pid not in WEIGHTS:
            return None
        dims = Dimensions(size="S" if WEIGHTS[pid] < 10 else "L", weight=WEIGHTS[pid])
        return Product(id=ID(pid), name=f"product {pid}", weight=WEIGHTS[pid], dimensions=dims)

    @strawberry.type
    class Query:
        @strawberry.field
        def products(self) -> list[Product]:
            return [p for p in map(make, WEIGHTS) if p]

        @strawberry.field
        def product(self, id: ID) -> Product | None:
            return make(str(id))

    return Schema(query=Query)


def requires_basic() -> Case:
    @strawberry.federation.type(name="Product", keys=["id"])
    class ShippedProduct:
        id: ID
        weight: int = strawberry.federation.field(external=True, default=-1)

        @strawberry.federation.field(requires=["weight"])
        def shipping_cost(self) -> int:
            if self.weight < 0:
                raise ValueError("weight was not sent")
            return self.weight * 3

        @strawberry.federation.field(requires=["weight"])
        def shipping_estimate(self, zone: str, express: bool = False) -> str:
            if self.weight < 0:
                raise ValueError("weight was not sent")
            return f"{zone}:{self.weight * (2 if express else 1)}"

        @strawberry.field
        def in_stock(self) -> bool:
            return str(self.id) != "2"

        @classmethod
        def resolve_reference(cls, id: ID, weight: int = -1) -> "ShippedProduct":
            return cls(id=id, weight=weight)

    @strawberry.type
    class Query:
        @strawberry.field
        def warehouse(self) -> list[ShippedProduct]:
            return [ShippedProduct(id=ID("3")), ShippedProduct(id=ID("4"))]

    return Case(
        "requires_basic",
        {"products": _products(), "shipping": Schema(query=Query, types=[ShippedProduct])},
        (
            q("{ products { name shippingCost } }"),
            q("{ products { shippingCost inStock weight } }"),
            q('{ product(id: "2") { shippingEstimate(zone: "eu") } }'),
            q(
                "query E($z: String!, $x: Boolean) { products { "
                "a: shippingEstimate(zone: $z, express: $x) b: shippingEstimate(zone: $z) } }",
                {"z": "us", "x": True},
            ),
            # From shipping's own root: the requirement is fetched from products first.
            q("{ warehouse { id shippingCost name } }"),
            q('{ warehouse { inStock shippingEstimate(zone: "asia", express: true) } }'),
            q('{ product(id: "9") { shippingCost } }'),
            # The client aliases the required field's name for something else.
            q(
                "{ products { weight: name shippingCost } }",
                divergent="Apollo sends the client's field aliased weight as the requirement",
            ),
        ),
        arguments={"Query.product": {"id": "3"}, "Product.shippingEstimate": {"zone": "eu"}},
    )


def requires_nested() -> Case:
    """The requirement is a nested selection of a shareable value type."""

    @strawberry.federation.type(shareable=True)
    class Dimensions:
        size: str = strawberry.federation.field(external=True)
        weight: int = strawberry.federation.field(external=True)

    @strawberry.federation.type(name="Product", keys=["id"])
    class ShippedProduct:
        id: ID
        dimensions: Dimensions | None = strawberry.federation.field(external=True, default=None)

        @strawberry.federation.field(requires=["dimensions { size weight }"])
        def shipping_class(self) -> str:
            dims = self.dimensions
            if dims is None:
                raise ValueError("dimensions were not sent")
            return f"{dims['size']}-{dims['weight'] // 10}"  # type: ignore[index]

        @classmethod
        def resolve_reference(cls, id: ID, dimensions: object = None) -> "ShippedProduct":
            return cls(id=id, dimensions=dimensions)  # type: ignore[arg-type]

    @strawberry.type
    class Query:
        @strawberry.field
        def shipping_ping(self) -> str:
            return "pong"

    return Case(
        "requires_nested",
        {
            "products": _products(with_dimensions=True),
            "shipping": Schema(query=Query, types=[ShippedProduct]),
        },
        (
            q("{ products { id shippingClass } }"),
            q("{ products { dimensions { size } shippingClass } }"),
            q('{ product(id: "2") { name shippingClass dimensions { weight } } }'),
        ),
        arguments={"Query.product": {"id": "4"}},
    )


def requires_chain() -> Case:
    """tax (taxes) requires shippingCost (shipping), which requires weight (products)."""

    @strawberry.federation.type(name="Product", keys=["id"])
    class ShippedProduct:
        id: ID
        weight: int = strawberry.federation.field(external=True, default=-1)

        @strawberry.federation.field(requires=["weight"])
        def shipping_cost(self) -> int:
            if self.weight < 0:
                raise ValueError("weight was not sent")
            return self.weight * 3

        @classmethod
        def resolve_reference(cls, id: ID, weight: int = -1) -> "ShippedProduct":
            return cls(id=id, weight=weight)

    @strawberry.type
    class ShipQuery:
        @strawberry.field
        def carriers(self) -> list[str]:
            return ["ups"]

    @strawberry.federation.type(name="Product", keys=["id"])
    class TaxedProduct:
        id: ID
        shipping_cost: int = strawberry.federation.field(external=True, default=-1)

        @strawberry.federation.field(requires=["shippingCost"])
        def tax(self) -> int:
            if self.shipping_cost < 0:
                raise ValueError("shippingCost was not sent")
            return self.shipping_cost // 5

        @classmethod
        def resolve_reference(cls, id: ID, shippingCost: int = -1) -> "TaxedProduct":  # noqa: N803
            return cls(id=id, shipping_cost=shippingCost)

    @strawberry.type
    class TaxQuery:
        @strawberry.field
        def tax_rate(self) -> int:
            return 20

    return Case(
        "requires_chain",
        {
            "products": _products(),
            "shipping": Schema(query=ShipQuery, types=[ShippedProduct]),
            "taxes": Schema(query=TaxQuery, types=[TaxedProduct]),
        },
        (
            q("{ products { id tax } }"),
            q("{ products { tax shippingCost name } }"),
            q('{ product(id: "4") { tax } taxRate }'),
        ),
        arguments={"Query.product": {"id": "1"}},
    )


def requires_field_with_arguments() -> Case:
    """The required field takes an argument: the requirement must send it."""

    @strawberry.federation.type(keys=["id"])
    class Product:
        id: ID

        @strawberry.federation.field(shareable=False)
        def price(self, currency: str) -> int:
            return {"EUR": 10, "USD": 11}.get(currency, 0) * int(str(self.id))

        @classmethod
        def resolve_reference(cls, id: ID) -> "Product":
            return cls(id=id)

    @strawberry.type
    class Query:
        @strawberry.field
        def products(self) -> list[Product]:
            return [Product(id=ID(str(i))) for i in range(1, 4)]

    @strawberry.federation.type(name="Product", keys=["id"])
    class DealProduct:
        id: ID
        sent_price: strawberry.Private[int]

        @strawberry.federation.field(external=True)
        def price(self, currency: str) -> int:
            return self.sent_price

        @strawberry.federation.field(requires=['price(currency: "EUR")'])
        def discounted(self) -> int:
            if self.sent_price < 0:
                raise ValueError("price was not sent")
            return self.sent_price // 2

        @classmethod
        def resolve_reference(cls, id: ID, price: int = -1) -> "DealProduct":
            return cls(id=id, sent_price=price)

    @strawberry.type
    class DealQuery:
        @strawberry.field
        def deals(self) -> list[DealProduct]:
            return [DealProduct(id=ID("2"), sent_price=-1)]

    return Case(
        "requires_field_with_arguments",
        {
            "prices": Schema(query=Query),
            "deals": Schema(query=DealQuery, types=[DealProduct]),
        },
        (
            q("{ products { id discounted } }"),
            q(
                '{ products { price(currency: "USD") discounted } }',
                divergent="Apollo sends the client's price(currency: USD) as the requirement "
                "price(currency: EUR): discounted is computed from the wrong price",
            ),
            q('{ deals { discounted price(currency: "EUR") } }'),
        ),
        arguments={"Product.price": {"currency": "EUR"}},
    )


CASES = [requires_basic(), requires_nested(), requires_chain(), requires_field_with_arguments()]
