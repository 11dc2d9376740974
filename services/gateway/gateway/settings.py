"""Gateway settings, from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


def _default_supergraph_path() -> Path:
    # services/gateway/gateway/settings.py -> repository root is four levels up.
    return Path(__file__).resolve().parents[3] / "infra" / "supergraph.graphql"


class GatewaySettings(ServiceSettings):
    """What the federation gateway needs: where the supergraph is and how to reach subgraphs."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    supergraph_path: Path = _default_supergraph_path()
    # Keyed by the subgraph name of join__graph(name: ...); overrides the composed URL.
    subgraph_urls: dict[str, str] = {}
    max_depth: int = 15
    debug_extensions: bool = False
    # None: on, except in production.
    graphiql: bool | None = None
    introspection: bool | None = None
    subgraph_timeout_seconds: float = 10
    # Parsed/validated documents and query plans kept in memory (LRU).
    document_cache_size: int = 1000
    plan_cache_size: int = 1000
    # The public edge: limits checked before anything is planned or fetched.
    max_tokens: int = 10_000
    # Characters of query text, comments included (a comment is no token); with the parsed
    # documents' and plans' caches bounded by the characters of the texts they keep.
    max_query_length: int = 100_000
    cache_max_chars: int = 20_000_000
    max_aliases: int = 30
    max_root_fields: int = 20
    max_batch_size: int = 10
    max_list_size: int = 100
    max_cost: int = 1000
    report_cost: bool = True
    # None: on in production only (dev/test stacks hammer one token in loops).
    rate_limit_enabled: bool | None = None
    rate_limit_capacity: int = 1000
    rate_limit_restore_rate: float = 50
    rate_limit_max_clients: int = 100_000
    persisted_operations_path: Path | None = None
    safelist_only: bool = False
    apq_cache_size: int = 10_000

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_development(self) -> GatewaySettings:
        # Replaces the base check: the gateway uses neither the database nor the broker.
        if self.safelist_only and self.persisted_operations_path is None:
            raise ValueError("safelist_only needs persisted_operations_path (the manifest)")
        if self.rate_limited and self.rate_limit_capacity < self.max_cost:
            raise ValueError("rate_limit_capacity below max_cost: some operations could never run")
        return self

    @property
    def production(self) -> bool:
        """Whether this is the production edge (no introspection, no GraphiQL, masked errors)."""
        return self.environment == "production"

    @property
    def rate_limited(self) -> bool:
        """Whether each client's cost points are limited by a token bucket."""
        if self.rate_limit_enabled is not None:
            return self.rate_limit_enabled
        return self.production

    @property
    def graphiql_enabled(self) -> bool:
        """GraphiQL on GET /graphql for browsers."""
        return self.graphiql if self.graphiql is not None else not self.production

    @property
    def introspection_enabled(self) -> bool:
        """Whether ``__schema``/``__type`` are answered."""
        return self.introspection if self.introspection is not None else not self.production
