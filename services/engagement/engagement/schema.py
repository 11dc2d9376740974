"""The engagement subgraph."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from engagement.community import schema as community
from engagement.interactions import schema as interactions
from engagement.listening import schema as listening
from engagement.privacy.schema import PrivacyExportType


@strawberry.type
class Query(interactions.Query, listening.Query, community.Query):
    pass


@strawberry.type
class Mutation(interactions.Mutation, listening.Mutation, community.Mutation):
    pass


# Each feature adds its fields of Customer as a base of the one Customer entity.
@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(interactions.CustomerType, community.CustomerCommunity):
    pass


schema = SubgraphSchema(query=Query, mutation=Mutation, types=[CustomerType, PrivacyExportType])
