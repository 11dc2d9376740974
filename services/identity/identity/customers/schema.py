"""The identity subgraph's part of the customer graph."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import partial

import strawberry
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, authorize
from crm_shared.pagination import (
    Connection,
    Edge,
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
)
from crm_shared.validation import parse_id, validated
from identity.customers import service
from identity.customers.models import Customer, CustomerCreate


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType:
    """A person the brand knows, across channels."""

    id: strawberry.ID
    name: str
    email: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, customer: Customer) -> CustomerType:
        return cls(
            id=strawberry.ID(str(customer.id)),
            name=customer.name,
            email=customer.email,
            created_at=customer.created_at,
        )

    @classmethod
    async def resolve_reference(cls, info: CrmInfo, id: strawberry.ID) -> CustomerType | None:
        customer_id = parse_id(id, field="id")
        authorize(info, Permission.CUSTOMERS_READ, customer_id=customer_id)
        return await customer_loader(info).load(customer_id)


def customer_loader(info: CrmInfo) -> DataLoader[uuid.UUID, CustomerType | None]:
    """The request's batch loader of the caller's tenant's customers."""
    context = info.context
    tenant_id = context.tenant_id

    async def load(ids: list[uuid.UUID]) -> list[CustomerType | None]:
        async with context.session() as session:
            found = await service.get_customers(session=session, tenant_id=tenant_id, ids=ids)
        return [CustomerType.from_model(found[i]) if i in found else None for i in ids]

    return context.loader("customers", partial(DataLoader, load_fn=load))


@strawberry.input
class RegisterCustomerInput:
    name: str
    email: str | None = None


@strawberry.type
class Query:
    @strawberry.field(description="One customer of the caller's tenant, or null.")
    async def customer(self, info: CrmInfo, id: strawberry.ID) -> CustomerType | None:
        customer_id = parse_id(id, field="id")
        authorize(info, Permission.CUSTOMERS_READ, customer_id=customer_id)
        return await customer_loader(info).load(customer_id)

    @strawberry.field(description="The tenant's customers, oldest first, a page at a time.")
    async def customers(
        self, info: CrmInfo, first: int = 20, after: str | None = None
    ) -> Connection[CustomerType]:
        authorize(info, Permission.CUSTOMERS_READ)
        limit = check_first(first)
        position = decode_cursor(after) if after is not None else None
        async with info.context.session() as session:
            rows = await service.list_customers(
                session=session, tenant_id=info.context.tenant_id, limit=limit + 1, after=position
            )
        page = rows[:limit]
        edges = [
            Edge(cursor=encode_cursor(c.created_at, c.id), node=CustomerType.from_model(c))
            for c in page
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > limit, end_cursor=edges[-1].cursor if edges else None
            ),
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register a customer; emits identity.customer.registered.v1.")
    async def register_customer(self, info: CrmInfo, input: RegisterCustomerInput) -> CustomerType:
        authorize(info, Permission.CUSTOMERS_WRITE)
        data = validated(CustomerCreate, {"name": input.name, "email": input.email})
        tenant_id = info.context.tenant_id
        async with info.context.session() as session, session.begin():
            customer = await service.register_customer(
                session=session, tenant_id=tenant_id, data=data
            )
        return CustomerType.from_model(customer)
