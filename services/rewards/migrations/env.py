"""Rewards' migrations: the ``rewards`` schema only."""

import rewards.accounts.models  # noqa: F401  (tables for autogenerate)
from crm_shared.migrations import run_alembic_env
from rewards.settings import RewardsSettings

run_alembic_env(RewardsSettings())
