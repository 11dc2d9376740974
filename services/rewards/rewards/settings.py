"""Rewards' settings (environment variables prefixed ``REWARDS_``)."""

from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


class RewardsSettings(ServiceSettings):
    """Rewards owns the ``rewards`` schema and connects as the ``rewards_svc`` role."""

    model_config = SettingsConfigDict(env_prefix="REWARDS_", extra="ignore", frozen=True)

    service_name: str = "rewards"
    db_schema: str = "rewards"
    database_url: str = "postgresql://rewards_svc@127.0.0.1:5432/crm"
    # Points credited when a customer registers (a rule, until rules arrive with issue 5).
    welcome_points: int = 100
