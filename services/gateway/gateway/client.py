"""Subgraph HTTP calls: one shared aiohttp session (keep-alive pool), orjson, one span per fetch."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from opentelemetry import propagate, trace
from yarl import URL

from gateway.executor import SubgraphError

# The verified bearer token travels on: each subgraph checks it again.
FORWARDED_HEADERS = ("authorization",)

_tracer = trace.get_tracer("gateway.subgraph")
_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


# An idle pooled connection is dropped before the subgraph's server drops it (uvicorn closes
# idle keep-alive connections after 5 s by default): reusing one the server has just closed
# fails the request ("Can not write request body") though the subgraph is up.
KEEPALIVE_SECONDS = 4.0


class SubgraphClient:
    """Posts GraphQL requests to subgraphs over one pooled aiohttp session.

    Tracing is done here rather than by aiohttp's OpenTelemetry instrumentation: one client
    span per fetch, whose context goes out as ``traceparent``. The instrumentation's signal
    callbacks and second span per call cost about as much CPU as the call itself.
    """

    def __init__(self, timeout_seconds: float, pool_size: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    async def start(self) -> None:
        """Opens the shared session (call from the app lifespan)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=KEEPALIVE_SECONDS, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                json_serialize=_dumps,
                # Subgraphs set no cookies: no jar to consult on every call.
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def close(self) -> None:
        """Closes the session and its pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url)
        return parsed

    async def post(
        self,
        subgraph: str,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        operation_name: str | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Sends one GraphQL request; raises SubgraphError when no GraphQL answer comes back."""
        session = self._session
        if session is None:
            raise SubgraphError(f'Subgraph "{subgraph}" client is not started')
        target = self._url(url)
        attributes: dict[str, str | int] = {
            "graphql.subgraph": subgraph,
            "http.request.method": "POST",
            "url.full": url,
        }
        if operation_name:
            attributes["graphql.operation.name"] = operation_name
        with _tracer.start_as_current_span(
            f"subgraph {subgraph}", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            request_headers = dict(_JSON_HEADERS)
            request_headers.update(headers)
            # traceparent (and tracestate) of this span: the subgraph's spans are its children.
            propagate.inject(request_headers)
            timeout = (
                aiohttp.ClientTimeout(total=timeout_seconds)
                if timeout_seconds is not None
                else self._timeout
            )
            try:
                async with session.post(
                    target, data=orjson.dumps(body), headers=request_headers, timeout=timeout
                ) as response:
                    raw = await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
                reason = str(error) or type(error).__name__
                raise SubgraphError(
                    f'Subgraph "{subgraph}" is unavailable: {reason}', "SUBGRAPH_UNAVAILABLE"
                ) from error
            if span.is_recording():
                span.set_attribute("http.response.status_code", status)
            try:
                decoded = orjson.loads(raw)
            except orjson.JSONDecodeError:
                decoded = None
            if not isinstance(decoded, dict) or not ("data" in decoded or "errors" in decoded):
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"HTTP {status}"))
                raise SubgraphError(
                    f'Subgraph "{subgraph}" answered HTTP {status} without a GraphQL response',
                    "SUBREQUEST_HTTP_ERROR",
                )
            if decoded.get("errors"):
                span.set_status(trace.Status(trace.StatusCode.ERROR, "GraphQL errors"))
            return decoded

    async def subscribe(
        self,
        subgraph: str,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> AsyncIterator[dict[str, Any]]:
        """A subscription to a subgraph over graphql-transport-ws: each event's GraphQL answer.

        Ends when the subgraph completes the subscription; an ``error`` message from it is
        yielded as ``{"errors": [...]}`` and ends it; a broken connection raises SubgraphError.
        Closing the iterator completes the subscription on the subgraph.
        """
        session = self._session
        if session is None:
            raise SubgraphError(f'Subgraph "{subgraph}" client is not started')
        ws_url = "ws" + url.removeprefix("http")
        handshake_headers = dict(headers)
        propagate.inject(handshake_headers)
        try:
            async with session.ws_connect(
                ws_url,
                protocols=(GRAPHQL_TRANSPORT_WS,),
                headers=handshake_headers,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5),
                heartbeat=30,
            ) as ws:
                await ws.send_str(_dumps({"type": "connection_init", "payload": {}}))
                ack = await ws.receive(timeout=self._timeout.total)
                if ack.type != aiohttp.WSMsgType.TEXT or orjson.loads(ack.data).get("type") != (
                    "connection_ack"
                ):
                    raise SubgraphError(f'Subgraph "{subgraph}" refused the subscription')
                operation_id = str(next(_subscription_ids))
                await ws.send_str(
                    _dumps({"id": operation_id, "type": "subscribe", "payload": body})
                )
                try:
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        frame = orjson.loads(message.data)
                        kind = frame.get("type")
                        if kind == "ping":
                            await ws.send_str(_dumps({"type": "pong"}))
                        elif kind == "next" and frame.get("id") == operation_id:
                            yield frame.get("payload") or {}
                        elif kind == "error" and frame.get("id") == operation_id:
                            yield {"errors": frame.get("payload") or []}
                            return
                        elif kind == "complete" and frame.get("id") == operation_id:
                            return
                finally:
                    if not ws.closed:
                        await ws.send_str(_dumps({"id": operation_id, "type": "complete"}))
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            reason = str(error) or type(error).__name__
            raise SubgraphError(
                f'Subgraph "{subgraph}" is unavailable: {reason}', "SUBGRAPH_UNAVAILABLE"
            ) from error
        raise SubgraphError(f'Subgraph "{subgraph}" closed the subscription')


GRAPHQL_TRANSPORT_WS = "graphql-transport-ws"
_subscription_ids = itertools.count(1)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
