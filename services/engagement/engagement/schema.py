"""The engagement subgraph."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from engagement.care import schema as care
from engagement.interactions import schema as interactions
from engagement.listening import schema as listening
from engagement.privacy.schema import PrivacyExportType


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(interactions.CustomerType, care.CustomerCases):
    """The customer as engagement knows them: interactions and cases."""


@strawberry.type
class Query(interactions.Query, listening.Query, care.Query):
    pass


@strawberry.type
class Mutation(interactions.Mutation, listening.Mutation, care.Mutation):
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
