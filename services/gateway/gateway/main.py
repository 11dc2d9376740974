"""The gateway's HTTP app: ``uvicorn --factory gateway.main:create_app``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket

from crm_shared.auth import TokenVerifier, http_jwks
from crm_shared.auth_revocation import RevocationList, http_revocations
from crm_shared.http import RequestLimits
from crm_shared.telemetry import configure_telemetry, instrument_app
from crm_shared.validation import json_depth
from gateway.client import SubgraphClient
from gateway.persisted import PersistedOperations, load_manifest
from gateway.ratelimit import TokenBucketLimiter
from gateway.runtime import EdgePolicy, Gateway, GraphQLResponse
from gateway.settings import GatewaySettings
from gateway.subscriptions import serve as serve_websocket
from gateway.supergraph import Supergraph

logger = logging.getLogger(__name__)

_GRAPHIQL_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Social CRM GraphiQL</title>
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css" />
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, { fetcher })
    );
  </script>
</body>
</html>
"""


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _graphql_response(result: GraphQLResponse) -> Response:
    return _json(result.status, result.body, dict(result.headers))


def _bad_request(message: str, code: str = "BAD_REQUEST") -> Response:
    return _json(400, {"errors": [{"message": message, "extensions": {"code": code}}]})


def _batch_response(results: list[GraphQLResponse]) -> Response:
    """One JSON array; the status is the operations' own when they share one, else 200."""
    statuses = {r.status for r in results}
    status = statuses.pop() if len(statuses) == 1 else 200
    headers: dict[str, str] = {}
    for result in results:
        if "retry-after" in result.headers:
            headers["retry-after"] = result.headers["retry-after"]
    return _json(status, [r.body for r in results], headers)


_INTERNAL_ERROR = {
    "errors": [
        {"message": "Internal gateway error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    ]
}


# Young collections every this many net allocations (CPython's default is 700): a page of
# customers allocates tens of thousands of objects, so the default collects many times per
# request, promoting the request's live objects to older generations.
GC_GEN0_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Moves what startup built (the supergraph, API schema, imported modules: ~130,000
    objects) out of the collector's reach, and collects young objects less often.

    A full collection walks every tracked object (~80 ms here with the schema in it) and runs
    whenever enough request objects were promoted; frozen, the schema is never walked again.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:  # noqa: C901 (to split, issue 18)
    """Builds the gateway app over the supergraph named by the settings."""
    settings = settings or GatewaySettings()
    configure_telemetry("gateway")
    supergraph = Supergraph.from_file(settings.supergraph_path, settings.subgraph_urls)
    client = SubgraphClient(settings.subgraph_timeout_seconds)
    manifest = (
        load_manifest(settings.persisted_operations_path)
        if settings.persisted_operations_path is not None
        else {}
    )
    gateway = Gateway(
        supergraph,
        client,
        max_depth=settings.max_depth,
        debug_extensions=settings.debug_extensions,
        document_cache_size=settings.document_cache_size,
        plan_cache_size=settings.plan_cache_size,
        cache_max_chars=settings.cache_max_chars,
        verifier=TokenVerifier(
            http_jwks(settings.jwks_url),
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            revocations=RevocationList(
                http_revocations(settings.revocation_list_url),
                refresh_seconds=settings.revocations_refresh_seconds,
            ),
        ),
        policy=EdgePolicy(
            max_tokens=settings.max_tokens,
            max_query_length=settings.max_query_length,
            max_aliases=settings.max_aliases,
            max_root_fields=settings.max_root_fields,
            max_list_size=settings.max_list_size,
            max_cost=settings.max_cost,
            introspection=settings.introspection_enabled,
            mask_errors=settings.production,
            report_cost=settings.report_cost,
            hide_suggestions=settings.production,
        ),
        limiter=TokenBucketLimiter(
            settings.rate_limit_capacity,
            settings.rate_limit_restore_rate,
            max_clients=settings.rate_limit_max_clients,
        )
        if settings.rate_limited
        else None,
        persisted=PersistedOperations(
            manifest, safelist_only=settings.safelist_only, cache_size=settings.apq_cache_size
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await client.start()
        settle_garbage_collector()
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(title="Social CRM gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gateway
    app.state.settings = settings

    async def post_graphql(request: Request) -> Response:
        raw = await request.body()
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _bad_request("POST body is not valid JSON.")
        if isinstance(payload, list):
            return await post_batch(payload, request)
        if not isinstance(payload, dict):
            return _bad_request("POST body must be a JSON object (or an array of them).")
        return _graphql_response(await execute(payload, request, "POST"))

    async def post_batch(payload: list[Any], request: Request) -> Response:
        # Batches are checked whole before any of their operations runs.
        if not payload:
            return _bad_request("A batch must hold at least one operation.")
        if len(payload) > settings.max_batch_size:
            if settings.max_batch_size <= 1:
                message = "Batched requests are not accepted: send one operation per request."
            else:
                message = (
                    f"The batch holds {len(payload)} operations; at most "
                    f"{settings.max_batch_size} are allowed."
                )
            return _bad_request(message, "BATCH_TOO_LARGE")
        if not all(isinstance(item, dict) for item in payload):
            return _bad_request("Every operation of a batch must be a JSON object.")
        # One after the other, in order: each is checked, charged and run on its own.
        return _batch_response([await execute(item, request, "POST") for item in payload])

    async def execute(payload: dict[str, Any], request: Request, method: str) -> GraphQLResponse:
        try:
            return await gateway.execute(
                payload.get("query"),
                payload.get("variables"),
                payload.get("operationName"),
                request.headers,
                method=method,
                extensions=payload.get("extensions"),
            )
        except Exception:
            # A gateway bug, not bad input: logged with its trace, answered as JSON.
            logger.exception("unexpected gateway failure")
            return GraphQLResponse(500, _INTERNAL_ERROR)

    async def get_graphql(request: Request) -> Response:
        params = request.query_params
        accept = request.headers.get("accept", "")
        if "query" not in params and "extensions" not in params:
            if settings.graphiql_enabled and "text/html" in accept:
                return HTMLResponse(_GRAPHIQL_HTML)
            return _bad_request("GET requests must carry a `query` parameter.")
        payload: dict[str, Any] = {
            "query": params.get("query"),
            "operationName": params.get("operationName") or None,
        }
        for name in ("variables", "extensions"):
            if params.get(name):
                try:
                    payload[name] = orjson.loads(params[name])
                except orjson.JSONDecodeError:
                    return _bad_request(f"The `{name}` search parameter contains invalid JSON.")
                if json_depth(payload[name], stop_at=settings.max_json_depth) > (
                    settings.max_json_depth
                ):
                    return _bad_request(
                        f"The `{name}` search parameter is nested deeper than "
                        f"{settings.max_json_depth} levels."
                    )
        return _graphql_response(await execute(payload, request, "GET"))

    async def healthz(_: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(_: Request) -> Response:
        failing = await gateway.check_subgraphs(timeout_seconds=2.0)
        if failing:
            return _json(503, {"status": "unavailable", "failing_subgraphs": failing})
        return _json(200, {"status": "ok", "subgraphs": supergraph.subgraph_names})

    async def websocket_graphql(websocket: WebSocket) -> None:
        await serve_websocket(websocket, gateway)

    # Plain Starlette routes: no dependency injection or validation layer on the hot path.
    app.router.add_websocket_route("/graphql", websocket_graphql)
    app.router.add_route("/graphql", post_graphql, methods=["POST"])
    app.router.add_route("/graphql", get_graphql, methods=["GET"])
    app.router.add_route("/healthz", healthz, methods=["GET"])
    app.router.add_route("/readyz", readyz, methods=["GET"])
    instrument_app(app)
    # Outermost: a body is refused for its size (413) or depth (400) before anything reads it.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    return app
