"""The rewards subgraph: each feature's queries and mutations merged into one schema."""

import strawberry
from strawberry.tools import merge_types

from crm_shared.graphql import SubgraphSchema
from rewards.accounts import schema as accounts
from rewards.catalogue import schema as catalogue
from rewards.offers import schema as offers
from rewards.privacy.schema import PrivacyExportType


# One Customer entity, composed of each feature's fields.
@strawberry.federation.type(keys=["id"], name="Customer")
class Customer(accounts.CustomerType, offers.CustomerOffers):
    pass


Query = merge_types("Query", (accounts.Query, offers.Query, catalogue.Query))
Mutation = merge_types("Mutation", (accounts.Mutation, offers.Mutation, catalogue.Mutation))

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    subscription=accounts.Subscription,
    types=[Customer, PrivacyExportType],
)
