"""The rewards subgraph."""

from crm_shared.graphql import SubgraphSchema
from rewards.accounts.schema import CustomerType, Mutation, Query, Subscription
from rewards.privacy.schema import PrivacyExportType

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[CustomerType, PrivacyExportType],
)
