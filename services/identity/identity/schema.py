"""The identity subgraph."""

import strawberry

from crm_shared.graphql import schema_extensions
from identity.customers.schema import CustomerType, Mutation, Query

schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    types=[CustomerType],
    extensions=schema_extensions(),
)
