"""The identity subgraph: each feature's queries and mutations merged into one schema."""

from strawberry.tools import merge_types

from crm_shared.graphql import SubgraphSchema
from identity.access import schema as access
from identity.customers import schema as customers

Query = merge_types("Query", (customers.Query, access.Query))
Mutation = merge_types("Mutation", (customers.Mutation, access.Mutation))

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    types=[customers.CustomerType],
)
