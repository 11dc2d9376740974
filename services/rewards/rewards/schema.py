"""The rewards subgraph: each feature's queries, mutations and Customer fields merged."""

import strawberry
from strawberry.tools import merge_types

from crm_shared.graphql import SubgraphSchema
from rewards.accounts import schema as accounts
from rewards.catalogue import schema as catalogue
from rewards.offers import schema as offers
from rewards.privacy.schema import PrivacyExportType
from rewards.purchases import schema as purchases
from rewards.referrals import schema as referrals
from rewards.rules import schema as rules
from rewards.tiers import schema as tiers
from rewards.value import schema as value


# One Customer entity, composed of each feature's fields.
@strawberry.federation.type(keys=["id"], name="Customer")
class Customer(
    accounts.CustomerType,
    tiers.CustomerTierFields,
    offers.CustomerOffers,
    purchases.PurchasesCustomerFields,
    referrals.ReferralsCustomerFields,
    value.ValueCustomerFields,
):
    """The customer as rewards knows them: points, tier, coupons, purchases, referrals, value."""


Query = merge_types(
    "Query",
    (accounts.Query, rules.Query, tiers.Query, offers.Query, catalogue.Query, referrals.Query),
)
Mutation = merge_types(
    "Mutation",
    (
        accounts.Mutation,
        rules.Mutation,
        tiers.Mutation,
        offers.Mutation,
        catalogue.Mutation,
        purchases.Mutation,
        referrals.Mutation,
    ),
)

schema = SubgraphSchema(
    query=Query,
    mutation=Mutation,
    subscription=accounts.Subscription,
    types=[Customer, PrivacyExportType],
)
