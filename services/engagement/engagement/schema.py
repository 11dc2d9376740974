"""The engagement subgraph."""

from crm_shared.graphql import SubgraphSchema
from engagement.interactions.schema import CustomerType, Query

schema = SubgraphSchema(query=Query, types=[CustomerType])
