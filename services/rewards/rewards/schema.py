"""The rewards subgraph."""

from crm_shared.graphql import SubgraphSchema
from rewards.accounts.schema import CustomerType, Query

schema = SubgraphSchema(query=Query, types=[CustomerType])
