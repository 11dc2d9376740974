"""The identity service: who the customer is, who the caller is, what each has agreed to."""

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from crm_shared.app import create_service_app
from crm_shared.auth import TokenVerifier
from crm_shared.auth_revocation import RevocationList
from crm_shared.db import Database
from identity.access import keys, revocations
from identity.access.routes import revocation_horizon
from identity.access.routes import router as access_router
from identity.access.service import TokenSettings
from identity.access.throttle import ThrottleSettings, throttle_jobs
from identity.handlers import build_handlers
from identity.partners.delivery import webhook_jobs
from identity.partners.fanout import fanout_bindings, fanout_jobs
from identity.partners.feed import partner_feed, partner_handlers
from identity.partners.handlers import webhook_handlers
from identity.partners.reconcile import partner_jobs
from identity.partners.routes import router as partners_router
from identity.schema import schema
from identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    """The identity app (``uvicorn --factory identity.main:create_app``)."""
    settings = settings or IdentitySettings()
    databases: list[Database] = []
    feed = partner_feed(settings)
    login_throttle = throttle_settings(settings)
    fanout = fanout_bindings(settings)

    async def own_jwks() -> Mapping[str, Any]:
        # Identity reads its own keys: no HTTP round trip to itself.
        async with databases[0].session() as session:
            return await keys.jwks(session=session)

    tokens = token_settings(settings)

    async def own_revocations() -> Mapping[str, Any]:
        async with databases[0].session() as session:
            return await revocations.recent_revocations(
                session, horizon_seconds=revocation_horizon(tokens)
            )

    app = create_service_app(
        settings=settings,
        schema=schema,
        handlers=build_handlers(settings),
        title="identity",
        verifier=TokenVerifier(
            own_jwks,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            revocations=RevocationList(
                own_revocations, refresh_seconds=settings.revocations_refresh_seconds
            ),
        ),
        routers=[access_router, partners_router],
        # Events of tenants with webhook endpoints are kept and delivered from a queue of
        # their own (identity.webhooks.events); events partners may see are republished to
        # the partner exchange from another (identity.partners.events). Each is bound only
        # to the (type, tenant) pairs an endpoint or subscription takes (fanout).
        queues={"webhooks": webhook_handlers(settings), "partners": partner_handlers(feed)},
        jobs=[
            *webhook_jobs(settings),
            *partner_jobs(settings),
            *fanout_jobs(settings, fanout),
            *throttle_jobs(login_throttle),
        ],
    )
    databases.append(app.state.db)
    fanout.install(app.state.db)
    service_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with service_lifespan(app):
                yield
        finally:
            await feed.close()  # after the consumers stopped: nothing publishes any more
            await fanout.close()

    app.router.lifespan_context = lifespan
    app.state.token_settings = tokens
    app.state.login_throttle = login_throttle
    return app


def throttle_settings(settings: IdentitySettings) -> ThrottleSettings:
    """How staff logins are throttled."""
    return ThrottleSettings(
        max_failures=settings.login_max_failures,
        address_max_failures=settings.login_address_max_failures,
        window_seconds=settings.login_failure_window_seconds,
        lock_seconds=settings.login_lock_seconds,
        lock_max_seconds=settings.login_lock_max_seconds,
    )


def token_settings(settings: IdentitySettings) -> TokenSettings:
    """What identity's tokens say and how long they live."""
    return TokenSettings(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        ttl=timedelta(seconds=settings.token_ttl_seconds),
        customer_ttl=timedelta(seconds=settings.customer_token_ttl_seconds),
    )
