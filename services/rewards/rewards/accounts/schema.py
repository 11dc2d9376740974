"""The rewards subgraph's part of the customer graph."""

from __future__ import annotations

import uuid
from functools import partial

import strawberry
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, authorize
from crm_shared.validation import parse_id
from rewards.accounts import service


@strawberry.type
class RewardsAccount:
    """A customer's points."""

    balance: int


def balance_loader(info: CrmInfo) -> DataLoader[uuid.UUID, int | None]:
    """The request's batch loader of balances (None: no account yet)."""
    context = info.context
    tenant_id = context.tenant_id

    async def load(ids: list[uuid.UUID]) -> list[int | None]:
        async with context.session() as session:
            balances = await service.get_balances(
                session=session, tenant_id=tenant_id, customer_ids=ids
            )
        return [balances.get(i) for i in ids]

    return context.loader("balances", partial(DataLoader, load_fn=load))


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType:
    id: strawberry.ID

    @strawberry.field(description="Points; null until the customer's account is opened.")
    async def rewards(self, info: CrmInfo) -> RewardsAccount | None:
        customer_id = parse_id(self.id, field="id")
        authorize(info, Permission.REWARDS_READ, customer_id=customer_id)
        balance = await balance_loader(info).load(customer_id)
        return None if balance is None else RewardsAccount(balance=balance)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> CustomerType:
        return cls(id=id)


@strawberry.type
class Query:
    @strawberry.field(description="A customer's points account, or null.")
    async def rewards_account(
        self, info: CrmInfo, customer_id: strawberry.ID
    ) -> RewardsAccount | None:
        customer = parse_id(customer_id, field="customerId")
        authorize(info, Permission.REWARDS_READ, customer_id=customer)
        balance = await balance_loader(info).load(customer)
        return None if balance is None else RewardsAccount(balance=balance)
