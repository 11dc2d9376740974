"""The rewards subgraph: each feature's queries, mutations and Customer fields merged."""

import strawberry
from strawberry.tools import merge_types

from crm_shared.graphql import SubgraphSchema
from rewards.accounts import schema as accounts
from rewards.privacy.schema import PrivacyExportType
from rewards.purchases import schema as purchases
from rewards.referrals import schema as referrals
from rewards.value import schema as value


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(
    accounts.CustomerType,
    purchases.PurchasesCustomerFields,
    referrals.ReferralsCustomerFields,
    value.ValueCustomerFields,
):
    """The customer as rewards knows them: points, purchases, referrals, value."""


Query = merge_types("Query", (accounts.Query, referrals.Query))
Mutation = merge_types("Mutation", (accounts.Mutation, purchases.Mutation, referrals.Mutation))

schema = SubgraphSchema(query=Query, mutation=Mutation, types=[CustomerType, PrivacyExportType])
