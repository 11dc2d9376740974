"""``Customer.value``: own revenue, referral revenue and their total, in cents."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from crm_shared.auth import Permission
from crm_shared.graphql import CrmInfo, keyed_loader
from crm_shared.resolvers import needs
from crm_shared.validation import parse_id
from rewards.value import service
from rewards.value.models import CustomerValue


@strawberry.type(name="CustomerValue")
class CustomerValueType:
    """What a customer is worth to the brand, in cents (minor units) of ``currency``."""

    own_revenue: int = strawberry.field(
        description="The customer's purchases net of refunds, in cents."
    )
    referral_revenue: int = strawberry.field(
        description="Purchases (net of refunds) of the customers they referred, in cents."
    )
    total: int = strawberry.field(description="ownRevenue + referralRevenue, in cents.")
    currency: str | None = strawberry.field(
        description="ISO 4217 code of the tenant's purchases; null before the first one."
    )

    @classmethod
    def from_model(cls, row: CustomerValue | None) -> CustomerValueType:
        if row is None:
            return cls(own_revenue=0, referral_revenue=0, total=0, currency=None)
        return cls(
            own_revenue=row.own_revenue_cents,
            referral_revenue=row.referral_revenue_cents,
            total=row.value_cents,
            currency=row.currency,
        )


async def _values(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, CustomerValue | None]:
    found: Mapping[uuid.UUID, CustomerValue | None] = await service.get_values(
        session=session, tenant_id=tenant_id, customer_ids=list(ids)
    )
    return found


def value_loader(info: CrmInfo) -> DataLoader[uuid.UUID, CustomerValue | None]:
    """The request's batch loader of customer values."""
    return keyed_loader(info, "customer_values", _values, None)


@strawberry.type
class ValueCustomerFields:
    """Rewards' value fields of ``Customer``."""

    id: strawberry.ID

    @strawberry.field(
        description="Own purchases plus referral-attributed revenue, in cents (rewards:read).",
        extensions=[needs(Permission.REWARDS_READ, customer="self.id")],
    )
    async def value(self, info: CrmInfo) -> CustomerValueType:
        customer_id = parse_id(self.id, field="id")
        return CustomerValueType.from_model(await value_loader(info).load(customer_id))
