"""Identity's migrations: the ``identity`` schema only."""

import identity.customers.models
import identity.tenants.models  # noqa: F401  (tables for autogenerate)
from crm_shared.migrations import run_alembic_env
from identity.settings import IdentitySettings

run_alembic_env(IdentitySettings())
