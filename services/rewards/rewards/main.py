"""The rewards service: points, and later rules, tiers, offers, coupons and referrals."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from crm_shared.app import create_service_app
from crm_shared.db import Database
from rewards.accounts.expiry import run_expiry
from rewards.handlers import build_handlers
from rewards.schema import schema
from rewards.settings import RewardsSettings


def create_app(settings: RewardsSettings | None = None) -> FastAPI:
    """The rewards app (``uvicorn --factory rewards.main:create_app``)."""
    settings = settings or RewardsSettings()
    app = create_service_app(
        settings=settings, schema=schema, handlers=build_handlers(settings), title="rewards"
    )
    if settings.expiry_interval_seconds > 0:
        _add_expiry_loop(app, settings.expiry_interval_seconds)
    return app


def _add_expiry_loop(app: FastAPI, interval_seconds: float) -> None:
    """Run the expiry scheduler for as long as the app runs."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            db: Database = app.state.db
            task = asyncio.create_task(
                run_expiry(db, interval_seconds=interval_seconds), name="rewards-expiry"
            )
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
