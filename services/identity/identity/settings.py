"""Identity's settings (environment variables prefixed ``IDENTITY_``)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

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
    # Login throttling (identity.access.throttle): this many wrong passwords for one account
    # (or, from one client address, for any) within the window lock it for lock_seconds,
    # doubled with each further failure up to lock_max_seconds.
    login_max_failures: int = 5
    login_address_max_failures: int = 50
    login_failure_window_seconds: float = 900.0
    login_lock_seconds: float = 60.0
    login_lock_max_seconds: float = 900.0

    @model_validator(mode="after")
    def _refuse_development_fingerprint_secret(self) -> IdentitySettings:
        if self.environment == "production" and (
            self.contact_fingerprint_secret == DEVELOPMENT_FINGERPRINT_SECRET
            or len(self.contact_fingerprint_secret) < 32
        ):
            raise ValueError("contact_fingerprint_secret: set a random secret of 32+ characters")
        return self

    # Partners (identity.partners): the broker's management HTTP API, through which partner
    # subscriptions get their broker user, queue, bindings and permissions.
    rabbitmq_management_url: str = "http://127.0.0.1:15672"
    rabbitmq_management_user: str = "guest"
    rabbitmq_management_password: str = "guest"
    # A partner queue keeps at most this much; beyond it the oldest messages go (never
    # reject-publish: a partner that stops reading must not stall the services' relays).
    partner_queue_max_length_bytes: int = 256 * 1024**2
    # Partner queues are bound to this topic exchange, not to ``exchange``: identity
    # republishes there (same routing key ``<type>.<tenant id>``) only the events that pass
    # the partner_sharing check (identity.partners.sharing).
    partner_exchange: str = "crm.partners"
    # How often the broker is brought in line with the partner tables (identity.partners.
    # reconcile; also once at start-up): 0 turns it off.
    partner_reconcile_seconds: float = 3_600.0
    # How often the bindings of identity's webhook and partner queues are brought in line
    # with the endpoints and subscriptions (identity.partners.fanout; also at start-up).
    fanout_reconcile_seconds: float = 300.0
    # Webhooks: how often due attempts are sent, how many per round, each request's timeout.
    webhook_poll_seconds: float = 1.0
    webhook_batch_size: int = 50
    webhook_timeout_seconds: float = 10.0
    # Retries back off exponentially (base * 2^(attempt-1), capped, with jitter) for at most
    # the window after the event; then the delivery fails and the endpoint is disabled.
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3_600.0
    webhook_retry_window_seconds: float = 3 * 86_400.0
    # Kept events (for replay) are forgotten after this many days.
    webhook_event_retention_days: int = 30
    # After a rotation the previous secret still signs (a second signature) this long.
    webhook_secret_overlap_seconds: float = 86_400.0

    @model_validator(mode="after")
    def _refuse_default_management_credentials(self) -> IdentitySettings:
        if self.environment == "production" and self.rabbitmq_management_password == "guest":
            raise ValueError("rabbitmq_management_password is the default guest one in production")
        return self

    @property
    def vhost(self) -> str:
        """The broker's virtual host, as ``amqp_url`` names it."""
        return unquote(urlsplit(self.amqp_url).path.lstrip("/")) or "/"
