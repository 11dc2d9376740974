"""The engagement subgraph: each feature's queries, mutations and subscriptions in one schema."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from engagement.care import schema as care
from engagement.community import schema as community
from engagement.connectors import schema as connectors
from engagement.influence import schema as influence
from engagement.interactions import schema as interactions
from engagement.listening import schema as listening
from engagement.privacy.schema import PrivacyExportType
from engagement.segments import schema as segments
from engagement.trends import schema as trends


# Each feature adds its fields of Customer as a base of the one Customer entity.
@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(
    interactions.CustomerType,
    care.CustomerCases,
    community.CustomerCommunity,
    segments.CustomerSegmentFields,
    influence.CustomerInfluenceFields,
):
    """The customer as engagement knows them: interactions, cases, community, standing."""


@strawberry.type
class Query(
    interactions.Query,
    listening.Query,
    care.Query,
    community.Query,
    trends.Query,
    segments.Query,
    influence.Query,
    connectors.Query,
):
    pass


@strawberry.type
class Mutation(
    interactions.Mutation,
    listening.Mutation,
    care.Mutation,
    community.Mutation,
    segments.Mutation,
    influence.Mutation,
    connectors.Mutation,
):
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
