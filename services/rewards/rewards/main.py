"""The rewards service: points, and later rules, tiers, offers, coupons and referrals."""

from functools import partial

from fastapi import FastAPI

from crm_shared.app import PeriodicJob, create_service_app
from rewards.accounts.expiry import expire_once
from rewards.accounts.ledger_check import check_every_tenant
from rewards.handlers import build_handlers
from rewards.purchases.router import purchases_router
from rewards.rules.service import prune_pending
from rewards.schema import schema
from rewards.settings import RewardsSettings
from rewards.tiers.service import recompute_all


def create_app(settings: RewardsSettings | None = None) -> FastAPI:
    """The rewards app (``uvicorn --factory rewards.main:create_app``)."""
    settings = settings or RewardsSettings()
    return create_service_app(
        settings=settings,
        schema=schema,
        handlers=build_handlers(settings),
        title="rewards",
        routers=[purchases_router(settings)],
        jobs=[
            PeriodicJob("expiry", settings.expiry_interval_seconds, expire_once),
            PeriodicJob("ledger-check", settings.ledger_check_interval_seconds, check_every_tenant),
            PeriodicJob("tiers", settings.tier_interval_seconds, recompute_all),
            PeriodicJob(
                "pending-triggers",
                settings.pending_prune_interval_seconds,
                partial(prune_pending, max_age_days=settings.pending_trigger_days),
            ),
        ],
    )
