"""HTTP error bodies: expected failures keep their status and code; nothing else leaks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from crm_shared.auth import Permission, Principal, TokenVerifier, bearer_token
from crm_shared.errors import (
    UNSTORABLE_TEXT_MESSAGE,
    BadUserInput,
    CrmError,
    Unauthenticated,
    unstorable_text,
)

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Map ``CrmError`` to its status with a JSON body; FastAPI already answers 422 for schemas."""

    @app.exception_handler(CrmError)
    async def _crm_error(request: Request, exc: CrmError) -> JSONResponse:
        return JSONResponse(
            {"error": {**exc.extensions(), "message": exc.message}}, status_code=exc.http_status
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(asyncpg.PostgresError)
    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        # Text PostgreSQL cannot store (a NUL character) is the caller's; the rest is ours.
        if unstorable_text(exc):
            return await _crm_error(request, BadUserInput(UNSTORABLE_TEXT_MESSAGE))
        log.error("unexpected database error on %s", request.url.path, exc_info=exc)
        return JSONResponse(
            {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error"}},
            status_code=500,
        )


async def request_principal(request: Request) -> Principal:
    """The verified caller of an HTTP request (``Authorization: Bearer``), or 401."""
    verifier: TokenVerifier = request.app.state.verifier
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthenticated("the request carries no bearer token")
    return await verifier.verify(token)


def requires(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, if they hold ``permission`` (else 401/403 with a body).

    Use as ``principal: Annotated[Principal, Depends(requires(Permission.X))]``.
    """

    async def dependency(request: Request) -> Principal:
        principal = await request_principal(request)
        principal.check(permission)
        return principal

    return dependency
