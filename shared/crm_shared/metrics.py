"""Metrics of every process: OpenTelemetry instruments, read by Prometheus at ``GET /metrics``.

Instruments are created here at import (the API's proxies bind them to the meter provider
``configure_telemetry`` installs later). Names follow OpenTelemetry; the Prometheus exporter
turns dots into underscores and adds the unit and ``_total`` suffixes, e.g.
``http_server_request_duration_seconds`` and ``crm_consumer_messages_handled_total``.

Gauges that need the database (the outbox backlog) are refreshed by the ``/metrics`` handler
just before it renders, so a scrape sees current values and an idle service queries nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
meter = metrics.get_meter("crm_shared")

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

http_request_duration = meter.create_histogram(
    "http.server.request.duration",
    unit="s",
    description="Duration of HTTP requests by route, method and status code.",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
)
consumer_handled = meter.create_counter(
    "crm.consumer.messages.handled",
    description="Messages whose handlers all committed (then acked).",
)
consumer_failed = meter.create_counter(
    "crm.consumer.messages.failed",
    description="Deliveries whose handling failed (each is then retried or parked).",
)
consumer_retried = meter.create_counter(
    "crm.consumer.messages.retried",
    description="Failed messages sent to a retry queue to be handled again after a delay.",
)
consumer_parked = meter.create_counter(
    "crm.consumer.messages.parked",
    description="Messages moved to the parking queue for an operator.",
)
handler_duration = meter.create_histogram(
    "crm.consumer.handler.duration",
    unit="s",
    description="Duration of one handler function for one message (its commit excluded).",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
)
job_duration = meter.create_histogram(
    "crm.job.duration",
    unit="s",
    description="Duration of one round of a periodic job, by job and outcome (ok, failed).",
    explicit_bucket_boundaries_advisory=(*SECONDS_BUCKETS, 60.0, 120.0, 300.0),
)
job_rows = meter.create_counter(
    "crm.job.rows",
    description="What a periodic job's rounds reported doing (rows, tenants), by job.",
)
events_pruned = meter.create_counter(
    "crm.events.pruned",
    description="Rows deleted by the retention job: published outbox rows and old inbox rows.",
)

# Requests to these paths are not counted: probes and scrapes would drown the real traffic.
UNMEASURED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Refresher = Callable[[], Awaitable[None]]
_refreshers: dict[str, Refresher] = {}
# Latest outbox readings per schema: (unpublished rows, age in seconds of the oldest).
_outbox: dict[str, tuple[int, float]] = {}


def _outbox_backlog(_: CallbackOptions) -> Iterable[Observation]:
    return [Observation(rows, {"schema": schema}) for schema, (rows, _age) in _outbox.items()]


def _outbox_oldest_age(_: CallbackOptions) -> Iterable[Observation]:
    return [Observation(age, {"schema": schema}) for schema, (_rows, age) in _outbox.items()]


meter.create_observable_gauge(
    "crm.outbox.backlog",
    callbacks=[_outbox_backlog],
    description="Outbox rows committed but not yet published to the broker.",
)
meter.create_observable_gauge(
    "crm.outbox.oldest.age",
    callbacks=[_outbox_oldest_age],
    unit="s",
    description="Age of the oldest unpublished outbox row (0 when the outbox is drained).",
)


def watch_outbox(dsn: str, schema: str) -> None:
    """Report ``<schema>.outbox``'s backlog and oldest age at every scrape."""
    import asyncpg

    query = (
        "SELECT count(*) AS rows, "
        "coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age "
        f"FROM {schema}.outbox WHERE published_at IS NULL"
    )

    async def refresh() -> None:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            try:
                row = await conn.fetchrow(query)
            finally:
                await conn.close(timeout=2)
        except Exception:
            # No reading beats a stale one: the gauge disappears and "absent" alerts fire.
            _outbox.pop(schema, None)
            log.warning("could not read the outbox of %s for metrics", schema, exc_info=True)
            return
        assert row is not None
        _outbox[schema] = (int(row["rows"]), float(row["age"]))

    add_refresher(f"outbox:{schema}", refresh)


def add_refresher(key: str, refresh: Refresher) -> None:
    """Run ``refresh`` before each scrape (to update what observable gauges report).

    One refresher per ``key``: registering a key again replaces the earlier one.
    """
    _refreshers[key] = refresh


async def metrics_endpoint(_: Request) -> Response:
    """``GET /metrics``: every instrument of this process, in Prometheus' text format."""
    if _refreshers:
        try:
            await asyncio.wait_for(asyncio.gather(*(r() for r in _refreshers.values())), 5)
        except TimeoutError:
            # Render what is known: the HTTP and consumer metrics matter most when it is slow.
            log.warning("metrics refresh took over 5s; serving the previous readings")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class HttpMetricsMiddleware:
    """Records each HTTP request's duration with its route template, method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception escaped every handler
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            http_request_duration.record(
                time.perf_counter() - started,
                {
                    "http.route": _route(scope),
                    "http.request.method": scope["method"],
                    "http.response.status_code": status,
                },
            )


def _route(scope: Scope) -> str:
    """The route template, never the raw path: unmatched paths share one label value."""
    from starlette.routing import Match

    # Middleware may see a copy of the scope the router annotated: match the routes here.
    app: Any = scope.get("app")
    partial = "unmatched"
    for route in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        if match is Match.FULL:
            return path
        if match is Match.PARTIAL and partial == "unmatched":
            partial = path  # the path exists, the method does not (405)
    return partial
