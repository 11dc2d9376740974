"""The engagement subgraph."""

import strawberry

from crm_shared.graphql import schema_extensions
from engagement.interactions.schema import CustomerType, Query

schema = strawberry.federation.Schema(
    query=Query, types=[CustomerType], extensions=schema_extensions()
)
