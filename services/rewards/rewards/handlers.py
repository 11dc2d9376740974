"""The events rewards consumes, wired to their handlers in one place."""

from functools import partial

from crm_shared.events.consumer import Handler, Registry, registry
from crm_shared.privacy import CustomerMerged, CustomerUnmerged
from rewards.accounts.handlers import CustomerRegistered, welcome_registered_customer
from rewards.accounts.merges import move_points_back, move_points_to_survivor
from rewards.offers.handlers import OFFER_HANDLERS
from rewards.privacy.handlers import PRIVACY_HANDLERS
from rewards.purchases.handlers import purchase_handlers
from rewards.referrals.handlers import REFERRAL_HANDLERS
from rewards.rules.conditions import Trigger
from rewards.rules.handlers import link_handlers, pay_trigger, rule_handlers
from rewards.settings import RewardsSettings
from rewards.value.merges import move_money_back, move_money_to_survivor


def build_handlers(settings: RewardsSettings) -> Registry:
    """The registry of rewards' handlers, with their settings bound."""
    return registry(
        Handler(
            CustomerRegistered,
            partial(
                welcome_registered_customer,
                pay_signup=partial(pay_trigger, trigger=Trigger.CUSTOMER_REGISTERED),
                welcome_points=settings.welcome_points,
                ttl_days=settings.points_ttl_days,
            ),
        ),
        Handler(CustomerMerged, move_points_to_survivor),
        Handler(CustomerUnmerged, move_points_back),
        Handler(CustomerMerged, move_money_to_survivor),
        Handler(CustomerUnmerged, move_money_back),
        *OFFER_HANDLERS,
        # Before privacy's: its erasure handler confirms, so it runs after the others' effects.
        *purchase_handlers(settings.points_ttl_days),
        *REFERRAL_HANDLERS,
        *link_handlers(
            welcome_points=settings.welcome_points,
            ttl_days=settings.points_ttl_days,
            pending_days=settings.pending_trigger_days,
        ),
        *PRIVACY_HANDLERS,
        *rule_handlers(welcome_points=settings.welcome_points, ttl_days=settings.points_ttl_days),
    )
