"""The settings base every service extends: typed, from the environment, failing fast."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_shared.outbound import OutboundPolicy

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Settings shared by every service; each service subclasses it with its own env prefix.

    Defaults work on a developer machine (PostgreSQL and RabbitMQ on their standard local
    ports, trust auth); outside development the defaults that are secrets are refused.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = "development"
    service_name: str = "crm"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/crm"
    db_schema: str = "public"
    # Connections each process keeps open, how many more it may open under a burst (closed when
    # given back), and how long a unit of work waits for one before failing (SERVICE_UNAVAILABLE
    # in GraphQL). A GraphQL request holds one from its first statement to its end, a consumer
    # handler one per message, a periodic job one; one event loop on one core keeps a handful
    # busy, so few stay open (PostgreSQL's max_connections is shared by every process) and the
    # peak stays at 20 as before.
    db_pool_size: int = 5
    db_max_overflow: int = 15
    db_pool_timeout_seconds: float = 30.0
    # How long connecting to PostgreSQL may take before the attempt fails.
    db_connect_timeout_seconds: float = 5.0
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/crm"
    exchange: str = "crm.events"
    # How long a starting service waits for an unreachable broker before it gives up.
    broker_startup_timeout_seconds: float = 60.0
    # The outbox relay wakes on NOTIFY; this is the polling fallback when a notification is lost.
    outbox_poll_seconds: float = 1.0
    outbox_batch_size: int = 500
    consumer_prefetch: int = 200
    # Deliveries handled together in one transaction (crm_shared.events.consumer): up to this
    # many (at most the prefetch), or what arrived within the wait of the first. 1: one
    # transaction per handler per delivery, as before batching.
    consumer_batch_size: int = Field(default=100, ge=1)
    consumer_batch_wait_ms: float = Field(default=5.0, ge=0)
    # Back-off before each retry of a failed handler; after the last one the message is parked.
    retry_delays_ms: list[int] = Field(default_factory=lambda: [1_000, 10_000, 60_000])
    # Broker-side safety net: a message redelivered this often (e.g. it crashes the consumer
    # before it can be retried) is dead-lettered to the parking queue by the quorum queue.
    delivery_limit: int = 10
    # Retention of the event tables (crm_shared.events.retention), pruned by a job every
    # service runs. Published outbox rows are read by nothing once sent (replays come from the
    # parking queue and identity's kept webhook events), so a week of them is kept for looking
    # at what was sent. Inbox rows are each handler's memory of the events it has applied: a
    # copy arriving after its rows went would be applied twice, so they must outlive the
    # longest time a copy can still come (retry back-offs, a relay republishing after a crash,
    # an operator replaying a parked message): 30 days, the window to replay parked messages
    # in. Unpublished outbox rows are never deleted.
    outbox_retention_days: float = 7.0
    inbox_retention_days: float = 30.0
    # How often the job runs (0: off in this process) and how many rows one DELETE removes
    # (each batch is its own short transaction; a round repeats batches until none is full).
    retention_interval_seconds: float = 600.0
    retention_batch_size: int = 1_000
    # Where identity publishes its signing keys, and what its tokens must say (crm_shared.auth).
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    auth_issuer: str = "https://identity.social-crm.local"
    auth_audience: str = "social-crm"
    # Outbound HTTP to URLs tenants give (webhooks) never reaches loopback, private,
    # link-local or metadata addresses (crm_shared.outbound); networks listed here (CIDR) are
    # the only exceptions: tests and `make run` deliver to 127.0.0.1/32.
    outbound_allowed_networks: list[str] = Field(default_factory=list)
    # Limits before parsing (crm_shared.http.RequestLimits): a larger body is answered 413, a
    # JSON body nested deeper 400, before any route or GraphQL parser reads it.
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_json_depth: int = Field(default=64, ge=1)
    # What production does not show the public (crm_shared.exposure): ``_service { sdl }`` is
    # answered only when this is true (None: everywhere but production; composition reads the
    # SDL before deploy, not from production), and ``/metrics`` only to
    # ``Authorization: Bearer <metrics_token>`` (none set: not served in production).
    expose_sdl: bool | None = None
    metrics_token: SecretStr | None = None
    # Revocation (crm_shared.auth_revocation): where identity lists the principals whose
    # tokens issued before a moment are refused (None: beside ``jwks_url``), and how often
    # each process reads it; a revoked token stops working within about this many seconds.
    revocations_url: str | None = None
    revocations_refresh_seconds: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_development(self) -> ServiceSettings:
        if self.environment == "production":
            if "guest:guest@" in self.amqp_url:
                raise ValueError("amqp_url uses the default guest account in production")
            if not urlsplit(self.database_url).password:
                raise ValueError("database_url has no password in production")
        if self.outbox_retention_days <= 0 or self.inbox_retention_days <= 0:
            raise ValueError("outbox_retention_days and inbox_retention_days must be positive")
        if self.inbox_retention_days * 86_400 <= sum(self.retry_delays_ms) / 1_000:
            raise ValueError(
                "inbox_retention_days must outlive the retries (retry_delays_ms), or a retried "
                "message would be applied again by handlers that had already succeeded"
            )
        if self.retention_batch_size < 1:
            raise ValueError("retention_batch_size must be at least 1")
        self.outbound_policy  # noqa: B018 - a network that is not CIDR fails here, at start
        if not self.db_schema.isidentifier():
            raise ValueError(f"db_schema {self.db_schema!r} is not a plain SQL identifier")
        return self

    @property
    def outbound_policy(self) -> OutboundPolicy:
        """What outbound HTTP may reach (``outbound_allowed_networks`` besides the public)."""
        return OutboundPolicy.allowing(self.outbound_allowed_networks)

    @property
    def sdl_exposed(self) -> bool:
        """Whether ``_service { sdl }`` is answered (off in production unless asked for)."""
        return self.expose_sdl if self.expose_sdl is not None else self.environment != "production"

    @property
    def revocation_list_url(self) -> str:
        """Where identity lists revoked principals (by default beside its JWKS)."""
        if self.revocations_url is not None:
            return self.revocations_url
        parts = urlsplit(self.jwks_url)
        return f"{parts.scheme}://{parts.netloc}/auth/revocations"

    @property
    def max_attempts(self) -> int:
        """How many times a handler runs before its message is parked."""
        return len(self.retry_delays_ms) + 1
