"""Rewards' migrations: the ``rewards`` schema only."""

import rewards.accounts.models  # noqa: F401  (tables for autogenerate)
import rewards.catalogue.models  # noqa: F401
import rewards.offers.models  # noqa: F401
from crm_shared.migrations import run_alembic_env
from rewards.settings import RewardsSettings

run_alembic_env(RewardsSettings())
