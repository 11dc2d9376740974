"""Engagement's migrations: the ``engagement`` schema only."""

import engagement.interactions.models  # noqa: F401  (tables for autogenerate)
import engagement.listening.models  # noqa: F401
from crm_shared.migrations import run_alembic_env
from engagement.settings import EngagementSettings

run_alembic_env(EngagementSettings())
