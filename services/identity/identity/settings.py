"""Identity's settings (environment variables prefixed ``IDENTITY_``)."""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings

# Good enough on a laptop; refused in production (fingerprints made with it are guessable).
DEVELOPMENT_FINGERPRINT_SECRET = "development-only-contact-fingerprint-secret"


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
    # The key of contact fingerprints (HMAC-SHA256 of a verified contact point, sent to rewards
    # for its fraud checks instead of the address). One per deployment; changing it makes
    # earlier fingerprints unmatchable.
    contact_fingerprint_secret: str = DEVELOPMENT_FINGERPRINT_SECRET

    @model_validator(mode="after")
    def _refuse_development_fingerprint_secret(self) -> IdentitySettings:
        if self.environment == "production" and (
            self.contact_fingerprint_secret == DEVELOPMENT_FINGERPRINT_SECRET
            or len(self.contact_fingerprint_secret) < 32
        ):
            raise ValueError("contact_fingerprint_secret: set a random secret of 32+ characters")
        return self
