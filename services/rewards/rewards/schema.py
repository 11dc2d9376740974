"""The rewards subgraph."""

from crm_shared.graphql import SubgraphSchema
from rewards.accounts.schema import CustomerType, Mutation, Query

schema = SubgraphSchema(query=Query, mutation=Mutation, types=[CustomerType])
