"""The engagement subgraph: each feature's queries, mutations and subscriptions in one schema."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from engagement.care import schema as care
from engagement.community import schema as community
from engagement.interactions import schema as interactions
from engagement.listening import schema as listening
from engagement.privacy.schema import PrivacyExportType


# Each feature adds its fields of Customer as a base of the one Customer entity.
@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(interactions.CustomerType, care.CustomerCases, community.CustomerCommunity):
    """The customer as engagement knows them: interactions, cases, community."""


@strawberry.type
class Query(interactions.Query, listening.Query, care.Query, community.Query):
    pass


@strawberry.type
class Mutation(interactions.Mutation, listening.Mutation, care.Mutation, community.Mutation):
    pass


@strawberry.type
class Subscription(interactions.Subscription, care.Subscription):
    pass


schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[CustomerType, PrivacyExportType],
)
