"""The engagement subgraph."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from engagement.interactions import schema as interactions
from engagement.listening import schema as listening
from engagement.privacy.schema import PrivacyExportType


@strawberry.type
class Query(interactions.Query, listening.Query):
    pass


@strawberry.type
class Mutation(interactions.Mutation, listening.Mutation):
    pass


schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    subscription=interactions.Subscription,
    types=[interactions.CustomerType, PrivacyExportType],
)
