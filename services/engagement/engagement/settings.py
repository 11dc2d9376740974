"""Engagement's settings (environment variables prefixed ``ENGAGEMENT_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


class EngagementSettings(ServiceSettings):
    """Engagement owns the ``engagement`` schema and connects as the ``engagement_svc`` role."""

    model_config = SettingsConfigDict(env_prefix="ENGAGEMENT_", extra="ignore", frozen=True)

    service_name: str = "engagement"
    db_schema: str = "engagement"
    database_url: str = "postgresql://engagement_svc@127.0.0.1:5432/crm"
    # Meta webhooks: the app secret that signs deliveries (X-Hub-Signature-256), per tenant id
    # in meta_app_secrets (JSON object) or one for every tenant; unset refuses every delivery.
    meta_app_secret: str | None = None
    meta_app_secrets: dict[str, str] = Field(default_factory=dict)
    # The token Meta echoes in the subscription handshake (hub.verify_token); unset refuses it.
    meta_verify_token: str | None = None
    # py3langid's probability below which a text's language is "und" (short texts guess badly).
    language_min_confidence: float = 0.5
    # Items per transaction when ingesting NDJSON.
    ingest_batch_size: int = 500
    # Largest accepted request body of the JSON endpoints (NDJSON is streamed, no limit).
    ingest_max_body_bytes: int = 10_000_000
    # How often rule contests whose voting closed get their winners (0: never, staff choose).
    contest_winners_interval_seconds: float = 60.0

    def meta_secret_for(self, tenant_id: str) -> str | None:
        """The Meta app secret that signs the tenant's webhooks."""
        return self.meta_app_secrets.get(tenant_id, self.meta_app_secret)
