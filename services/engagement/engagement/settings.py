"""Engagement's settings (environment variables prefixed ``ENGAGEMENT_``)."""

from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


class EngagementSettings(ServiceSettings):
    """Engagement owns the ``engagement`` schema and connects as the ``engagement_svc`` role."""

    model_config = SettingsConfigDict(env_prefix="ENGAGEMENT_", extra="ignore", frozen=True)

    service_name: str = "engagement"
    db_schema: str = "engagement"
    database_url: str = "postgresql://engagement_svc@127.0.0.1:5432/crm"
