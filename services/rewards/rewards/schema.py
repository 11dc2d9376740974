"""The rewards subgraph."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from rewards.accounts import schema as accounts
from rewards.privacy.schema import PrivacyExportType
from rewards.rules import schema as rules
from rewards.tiers import schema as tiers


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(accounts.CustomerType, tiers.CustomerTierFields):
    pass


@strawberry.type
class Query(accounts.Query, rules.Query, tiers.Query):
    pass


@strawberry.type
class Mutation(accounts.Mutation, rules.Mutation, tiers.Mutation):
    pass


schema = SubgraphSchema(query=Query, mutation=Mutation, types=[CustomerType, PrivacyExportType])
