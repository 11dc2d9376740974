"""The gateway's HTTP app: ``uvicorn --factory gateway.main:create_app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from crm_shared.auth import TokenVerifier, http_jwks
from crm_shared.telemetry import configure_telemetry, instrument_app
from gateway.client import SubgraphClient, instrument_aiohttp_client
from gateway.runtime import Gateway, GraphQLResponse
from gateway.settings import GatewaySettings
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


def _bad_request(message: str) -> Response:
    return _json(400, {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]})


_INTERNAL_ERROR = {
    "errors": [
        {"message": "Internal gateway error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    ]
}


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Builds the gateway app over the supergraph named by the settings."""
    settings = settings or GatewaySettings()
    configure_telemetry("gateway")
    # Before the session exists: sessions created afterwards send traceparent.
    instrument_aiohttp_client()
    supergraph = Supergraph.from_file(settings.supergraph_path, settings.subgraph_urls)
    client = SubgraphClient(settings.subgraph_timeout_seconds)
    gateway = Gateway(
        supergraph,
        client,
        max_depth=settings.max_depth,
        debug_extensions=settings.debug_extensions,
        document_cache_size=settings.document_cache_size,
        plan_cache_size=settings.plan_cache_size,
        verifier=TokenVerifier(
            http_jwks(settings.jwks_url),
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await client.start()
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
        if not isinstance(payload, dict):
            return _bad_request("POST body must be a JSON object.")
        return await execute(
            payload.get("query"),
            payload.get("variables"),
            payload.get("operationName"),
            request,
            "POST",
        )

    async def execute(
        query: Any, variables: Any, operation_name: Any, request: Request, method: str
    ) -> Response:
        try:
            result = await gateway.execute(
                query, variables, operation_name, request.headers, method=method
            )
        except Exception:
            # A gateway bug, not bad input: logged with its trace, answered as JSON.
            logger.exception("unexpected gateway failure")
            return _json(500, _INTERNAL_ERROR)
        return _graphql_response(result)

    async def get_graphql(request: Request) -> Response:
        params = request.query_params
        accept = request.headers.get("accept", "")
        if "query" not in params:
            if settings.graphiql and "text/html" in accept:
                return HTMLResponse(_GRAPHIQL_HTML)
            return _bad_request("GET requests must carry a `query` parameter.")
        variables: Any = None
        if params.get("variables"):
            try:
                variables = orjson.loads(params["variables"])
            except orjson.JSONDecodeError:
                return _bad_request("The `variables` search parameter contains invalid JSON.")
        return await execute(
            params.get("query"), variables, params.get("operationName") or None, request, "GET"
        )

    async def healthz(_: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(_: Request) -> Response:
        failing = await gateway.check_subgraphs(timeout_seconds=2.0)
        if failing:
            return _json(503, {"status": "unavailable", "failing_subgraphs": failing})
        return _json(200, {"status": "ok", "subgraphs": supergraph.subgraph_names})

    # Plain Starlette routes: no dependency injection or validation layer on the hot path.
    app.router.add_route("/graphql", post_graphql, methods=["POST"])
    app.router.add_route("/graphql", get_graphql, methods=["GET"])
    app.router.add_route("/healthz", healthz, methods=["GET"])
    app.router.add_route("/readyz", readyz, methods=["GET"])
    instrument_app(app)
    return app
