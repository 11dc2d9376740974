"""Builds a service's FastAPI app: GraphQL subgraph, health probes, outbox relay, consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import aio_pika
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from crm_shared.auth import TokenVerifier, http_jwks
from crm_shared.auth_revocation import RevocationList, http_revocations
from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer, Registry
from crm_shared.events.live import LiveEvents
from crm_shared.events.relay import OutboxRelay
from crm_shared.events.retention import prune_with
from crm_shared.events.topology import declare_exchange
from crm_shared.exposure import expose_with_care
from crm_shared.graphql import SubgraphApp, SubgraphSchema
from crm_shared.http import RequestLimits, install_error_handlers
from crm_shared.metrics import job_duration, job_rows, watch_outbox
from crm_shared.settings import ServiceSettings
from crm_shared.telemetry import configure_telemetry, instrument_app, shutdown_telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """Work a service repeats on a schedule while it runs (expiry, SLA checks, recomputations).

    Every replica runs its jobs, so a job must be safe to run on several at once: claim rows
    with ``FOR UPDATE SKIP LOCKED`` or key its effects so a second run writes nothing.
    """

    name: str
    interval_seconds: float
    run: Callable[[Database], Awaitable[Any]]


# The job every service runs: published outbox rows and old inbox rows are deleted.
RETENTION_JOB = "event-retention"


def retention_job(settings: ServiceSettings) -> PeriodicJob:
    """The retention of the outbox and the inbox (``crm_shared.events.retention``)."""
    return PeriodicJob(
        RETENTION_JOB, settings.retention_interval_seconds, partial(prune_with, settings)
    )


async def run_periodically(job: PeriodicJob, db: Database) -> None:
    """Run ``job`` every ``job.interval_seconds`` until cancelled; a failed round is logged.

    Each round's duration is recorded (``crm.job.duration``, by job and outcome) and what it
    returns, when a count, is added to ``crm.job.rows``."""
    while True:
        started = time.monotonic()
        outcome = "ok"
        try:
            done = await job.run(db)
            if isinstance(done, int) and not isinstance(done, bool):
                job_rows.add(done, {"job": job.name})
        except Exception:  # the loop must outlive a bad round; the next one retries
            outcome = "failed"
            log.exception("periodic job %s failed", job.name)
        job_duration.record(time.monotonic() - started, {"job": job.name, "outcome": outcome})
        await asyncio.sleep(job.interval_seconds)


async def connect_broker(
    url: str, *, timeout: float, first_delay: float = 0.5, max_delay: float = 5.0
) -> aio_pika.abc.AbstractRobustConnection:
    """A robust connection to the broker, retried with back-off for up to ``timeout`` seconds.

    A robust connection reconnects by itself once it has connected, but its first connect
    fails at once; a service starting while the broker is still down waits for it instead.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    delay = first_delay
    while True:
        try:
            return await aio_pika.connect_robust(url)
        except ConnectionError as exc:  # refused, reset, or the broker not up yet
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("broker unreachable at start-up (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


def create_service_app(
    *,
    settings: ServiceSettings,
    schema: SubgraphSchema,
    handlers: Registry,
    title: str,
    verifier: TokenVerifier | None = None,
    routers: Sequence[APIRouter] = (),
    jobs: Sequence[PeriodicJob] = (),
    queues: Mapping[str, Registry] | None = None,
    body_limits: Mapping[str, int | None] | None = None,
) -> FastAPI:
    """The app of one subgraph service; ``handlers`` are the events it consumes.

    ``verifier`` checks callers' tokens; by default against the JWKS at ``settings.jwks_url``.
    ``routers`` are the service's own HTTP endpoints beside ``/graphql`` (ingestion, tokens).
    ``jobs`` run on their schedule for as long as the app runs (those with an interval of 0
    are off); the retention of the outbox and inbox (:func:`retention_job`) is always added,
    and ``app.state.jobs`` lists them all. ``queues`` are further consumers, each with queues
    of its own named ``<service>.<purpose>`` (e.g. ``identity.webhooks``, bound to every
    event type). ``body_limits`` are routes (by path prefix) that take larger bodies than
    ``settings.max_body_bytes``, or None for a streamed route that bounds its body itself.
    """
    configure_telemetry(settings.service_name, environment=settings.environment)
    db = Database(settings)
    watch_outbox(db.dsn, db.schema)
    verifier = verifier or TokenVerifier(
        http_jwks(settings.jwks_url),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        revocations=RevocationList(
            http_revocations(settings.revocation_list_url),
            refresh_seconds=settings.revocations_refresh_seconds,
        ),
    )
    jobs = (*jobs, retention_job(settings))
    state: dict[str, Any] = {}
    live = LiveEvents(settings.service_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connection = await connect_broker(
            settings.amqp_url, timeout=settings.broker_startup_timeout_seconds
        )
        state["amqp"] = connection
        channel = await connection.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, settings.exchange)
        relay = OutboxRelay(
            dsn=db.dsn,
            schema=db.schema,
            exchange=exchange,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
        )
        relay_task = asyncio.create_task(relay.run(), name=f"{settings.service_name}-relay")
        consumers = [
            EventConsumer(
                service=name,
                database=db,
                handlers=registry,
                retry_delays_ms=settings.retry_delays_ms,
                delivery_limit=settings.delivery_limit,
                prefetch=settings.consumer_prefetch,
                batch_size=settings.consumer_batch_size,
                batch_wait_ms=settings.consumer_batch_wait_ms,
            )
            for name, registry in [
                (settings.service_name, handlers),
                *((f"{settings.service_name}.{p}", r) for p, r in (queues or {}).items()),
            ]
            if registry
        ]
        for consumer in consumers:
            await consumer.start(connection, settings.exchange)
        await live.start(connection, settings.exchange)
        job_tasks = [
            asyncio.create_task(
                run_periodically(job, db), name=f"{settings.service_name}-{job.name}"
            )
            for job in jobs
            if job.interval_seconds > 0
        ]
        try:
            yield
        finally:
            for task in job_tasks:
                task.cancel()
            await asyncio.gather(*job_tasks, return_exceptions=True)
            for consumer in consumers:
                await consumer.stop()
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            await connection.close()
            await db.dispose()
            shutdown_telemetry()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.db = db
    app.state.settings = settings
    app.state.verifier = verifier
    app.state.jobs = jobs
    install_error_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready: the database and the broker are reachable."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(db.ping(), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            checks["database"] = f"unreachable: {type(exc).__name__}"
        connection = state.get("amqp")
        checks["broker"] = (
            "ok" if connection is not None and connection.connected.is_set() else ("unreachable")
        )
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    # A route, not a mount: a mount would redirect POST /graphql to /graphql/.
    expose_with_care(schema)
    graphql_app = SubgraphApp(schema, db, verifier, live)
    app.add_route("/graphql", graphql_app, methods=["GET", "POST"])  # type: ignore[arg-type]
    # Subscriptions (graphql-transport-ws), opened by the gateway with the caller's token.
    app.router.add_websocket_route("/graphql", graphql_app)  # type: ignore[arg-type]
    for router in routers:
        app.include_router(router)
    instrument_app(app)
    # Outermost: nothing (tracing included) reads a body before its size and depth are known.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        path_limits=body_limits,
    )
    return app
