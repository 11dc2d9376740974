"""Identity's settings (environment variables prefixed ``IDENTITY_``)."""

from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    """Identity owns the ``identity`` schema and connects as the ``identity_svc`` role."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore", frozen=True)

    service_name: str = "identity"
    db_schema: str = "identity"
    database_url: str = "postgresql://identity_svc@127.0.0.1:5432/crm"
    # Lifetimes of access tokens (staff and clients) and of customer-scoped tokens.
    token_ttl_seconds: int = 900
    customer_token_ttl_seconds: int = 900
    # The services that must confirm an erasure before identity calls it complete.
    erasure_services: list[str] = ["identity", "engagement", "rewards"]
