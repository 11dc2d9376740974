"""The settings base every service extends: typed, from the environment, failing fast."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    db_pool_size: int = 10
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/crm"
    exchange: str = "crm.events"
    # How long a starting service waits for an unreachable broker before it gives up.
    broker_startup_timeout_seconds: float = 60.0
    # The outbox relay wakes on NOTIFY; this is the polling fallback when a notification is lost.
    outbox_poll_seconds: float = 1.0
    outbox_batch_size: int = 500
    consumer_prefetch: int = 200
    # Back-off before each retry of a failed handler; after the last one the message is parked.
    retry_delays_ms: list[int] = Field(default_factory=lambda: [1_000, 10_000, 60_000])
    # Broker-side safety net: a message redelivered this often (e.g. it crashes the consumer
    # before it can be retried) is dead-lettered to the parking queue by the quorum queue.
    delivery_limit: int = 10
    # Where identity publishes its signing keys, and what its tokens must say (crm_shared.auth).
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    auth_issuer: str = "https://identity.social-crm.local"
    auth_audience: str = "social-crm"

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_development(self) -> ServiceSettings:
        if self.environment == "production":
            if "guest:guest@" in self.amqp_url:
                raise ValueError("amqp_url uses the default guest account in production")
            if not urlsplit(self.database_url).password:
                raise ValueError("database_url has no password in production")
        if not self.db_schema.isidentifier():
            raise ValueError(f"db_schema {self.db_schema!r} is not a plain SQL identifier")
        return self

    @property
    def max_attempts(self) -> int:
        """How many times a handler runs before its message is parked."""
        return len(self.retry_delays_ms) + 1
