"""The rewards subgraph: each feature's queries and mutations merged into one schema."""

import strawberry
from strawberry.tools import merge_types

from crm_shared.graphql import SubgraphSchema
from rewards.accounts import schema as accounts
from rewards.catalogue import schema as catalogue
from rewards.offers import schema as offers
from rewards.privacy.schema import PrivacyExportType
from rewards.rules import schema as rules
from rewards.tiers import schema as tiers


# One Customer entity, composed of each feature's fields.
@strawberry.federation.type(keys=["id"], name="Customer")
class Customer(accounts.CustomerType, offers.CustomerOffers, tiers.CustomerTierFields):
    pass


FEATURES = (accounts, rules, tiers, offers, catalogue)
Query = merge_types("Query", tuple(f.Query for f in FEATURES))
Mutation = merge_types("Mutation", tuple(f.Mutation for f in FEATURES))

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    subscription=accounts.Subscription,
    types=[Customer, PrivacyExportType],
)
