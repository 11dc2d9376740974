"""The engagement subgraph."""

import strawberry

from crm_shared.graphql import SubgraphSchema
from engagement.influence import schema as influence
from engagement.interactions import schema as interactions
from engagement.listening import schema as listening
from engagement.privacy.schema import PrivacyExportType
from engagement.segments import schema as segments
from engagement.trends import schema as trends


@strawberry.federation.type(keys=["id"], name="Customer")
class CustomerType(
    interactions.CustomerType, segments.CustomerSegmentFields, influence.CustomerInfluenceFields
):
    """Engagement's customer: interactions, segment, influence."""


@strawberry.type
class Query(interactions.Query, listening.Query, trends.Query, segments.Query, influence.Query):
    pass


@strawberry.type
class Mutation(interactions.Mutation, listening.Mutation, segments.Mutation, influence.Mutation):
    pass


schema = SubgraphSchema(query=Query, mutation=Mutation, types=[CustomerType, PrivacyExportType])
