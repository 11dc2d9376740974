"""The engagement subgraph's part of the customer graph."""

from __future__ import annotations

import uuid
from functools import partial

import strawberry
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, authorize
from crm_shared.validation import parse_id
from engagement.interactions import service


def interaction_count_loader(info: CrmInfo) -> DataLoader[uuid.UUID, int]:
    """The request's batch loader of interaction counts."""
    context = info.context
    tenant_id = context.tenant_id

    async def load(ids: list[uuid.UUID]) -> list[int]:
        async with context.session() as session:
            counts = await service.count_interactions(
                session=session, tenant_id=tenant_id, customer_ids=ids
            )
        return [counts.get(i, 0) for i in ids]

    return context.loader("interaction_counts", partial(DataLoader, load_fn=load))


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType:
    id: strawberry.ID

    @strawberry.field(description="How many interactions the customer has had with the brand.")
    async def interaction_count(self, info: CrmInfo) -> int:
        customer_id = parse_id(self.id, field="id")
        authorize(info, Permission.INTERACTIONS_READ, customer_id=customer_id)
        return await interaction_count_loader(info).load(customer_id)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> CustomerType:
        return cls(id=id)


@strawberry.type
class Query:
    @strawberry.field(description="How many interactions a customer has had.")
    async def interaction_count(self, info: CrmInfo, customer_id: strawberry.ID) -> int:
        customer = parse_id(customer_id, field="customerId")
        authorize(info, Permission.INTERACTIONS_READ, customer_id=customer)
        return await interaction_count_loader(info).load(customer)
