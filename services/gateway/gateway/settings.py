"""Gateway settings, from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

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
    graphiql: bool = True
    subgraph_timeout_seconds: float = 10
    # Parsed/validated documents and query plans kept in memory (LRU).
    document_cache_size: int = 1000
    plan_cache_size: int = 1000
