"""The identity subgraph: each feature's queries and mutations merged into one schema."""

from strawberry.tools import merge_types

from crm_shared.graphql import SubgraphSchema
from identity.access import schema as access
from identity.consent import schema as consent
from identity.customers import merge_schema as merges
from identity.customers import schema as customers
from identity.duplicates import schema as duplicates
from identity.partners import schema as partners
from identity.privacy import schema as privacy
from identity.profiles import schema as profiles

Query = merge_types(
    "Query",
    (
        customers.Query,
        duplicates.Query,
        profiles.Query,
        privacy.Query,
        access.Query,
        partners.Query,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        customers.Mutation,
        merges.Mutation,
        duplicates.Mutation,
        profiles.Mutation,
        consent.Mutation,
        privacy.Mutation,
        access.Mutation,
        partners.Mutation,
    ),
)

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    types=[customers.CustomerType],
)
