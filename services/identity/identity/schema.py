"""The identity subgraph."""

from crm_shared.graphql import SubgraphSchema
from identity.customers.schema import CustomerType, Mutation, Query

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    types=[CustomerType],
)
