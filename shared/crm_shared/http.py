"""HTTP error bodies: expected failures keep their status and code; nothing else leaks."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


# -- limits before parsing ------------------------------------------------------------------------

# A JSON string (escapes included): brackets inside strings do not nest anything.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def raw_json_depth(body: bytes, *, stop_at: int) -> int:
    """How deeply a JSON text nests objects and arrays, read from its bytes without parsing
    (counting stops past ``stop_at``). A body with fewer brackets than ``stop_at`` is answered
    by a count; otherwise strings are cut out and the innermost pairs of the brackets left are
    removed a level per pass (each pass a C-speed ``bytes.replace``). Brackets that do not pair up
    (not JSON) count as deep as the pairs around them: the parser refuses them later."""
    opened = body.count(b"{") + body.count(b"[")
    if opened <= stop_at:
        return opened  # an upper bound, within the limit
    # Objects and arrays nest alike: one kind of bracket left, so a pass peels one level.
    brackets = _JSON_STRING.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKETS)
    depth = 0
    while brackets and depth <= stop_at:
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            break
        brackets = inner
        depth += 1
    return depth


_LIMITED_METHODS = frozenset({"POST", "PUT", "PATCH"})


# An oversized body is read and dropped (never kept) up to this many times the limit before
# the 413 is sent, so that an ordinary client, still sending, reads the answer instead of a
# reset connection; a larger one is cut off (the connection is closed after the answer).
_DRAIN_FACTOR = 16


async def _drain(receive: Receive, budget: int) -> None:
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: a request body larger than ``max_body_bytes`` is answered 413 before
    anything reads it (by its ``Content-Length``, or as soon as more arrives), and a JSON body
    nested deeper than ``max_json_depth`` 400, before any JSON parser recurses into it.

    The body is read here (what every route does first anyway) and handed on unchanged. The
    error body has the GraphQL shape (``errors[].extensions.code``), which REST callers read
    as well as GraphQL ones: ``PAYLOAD_TOO_LARGE`` or ``BAD_REQUEST``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_json_depth: int,
        path_limits: Mapping[str, int | None] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        # Routes (by path prefix, the longest wins) that take more, or None: a streamed route
        # that reads and bounds its body itself (NDJSON ingestion), passed through unread.
        self.path_limits = sorted((path_limits or {}).items(), key=lambda i: -len(i[0]))

    def _limit(self, path: str) -> int | None:
        for prefix, limit in self.path_limits:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _LIMITED_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        too_large = f"The request body is over {limit} bytes, the most this route accepts."
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, 400, "BAD_REQUEST", "Content-Length is not a number.")
                    return
                if declared > limit:
                    await _drain(receive, limit * _DRAIN_FACTOR)
                    await _send_error(send, 413, "PAYLOAD_TOO_LARGE", too_large)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await _drain(receive, limit * _DRAIN_FACTOR - size)
                await _send_error(send, 413, "PAYLOAD_TOO_LARGE", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _is_json(scope) and raw_json_depth(body, stop_at=self.max_json_depth) > (
            self.max_json_depth
        ):
            await _send_error(
                send,
                400,
                "BAD_REQUEST",
                f"The JSON body is nested deeper than {self.max_json_depth} levels.",
            )
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False
