"""GraphQL over WebSocket for consoles: the graphql-transport-ws protocol, server side.

https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md. The token travels in the
``connection_init`` payload (``{"authorization": "Bearer ..."}``; browsers cannot set headers
on a WebSocket) and is verified before ``connection_ack``; the socket is closed when the token
expires, so a console reconnects with a fresh one. Each ``subscribe`` runs through the same
edge, plan and checks as an HTTP request (``Gateway.subscribe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import jwt
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from crm_shared.auth import bearer_token
from crm_shared.errors import CrmError
from gateway.executor import SubgraphError
from gateway.runtime import Gateway, GraphQLResponse

log = logging.getLogger(__name__)

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT_SECONDS = 10


class _Closed(Exception):
    """The protocol says to close the socket with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def serve(websocket: WebSocket, gateway: Gateway) -> None:
    """Serve one WebSocket connection until either side closes it."""
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.close(4406, "Subprotocol not acceptable")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    connection = _Connection(websocket, gateway)
    try:
        await connection.run()
    except _Closed as closed:
        with contextlib.suppress(Exception):
            await websocket.close(closed.code, closed.reason)
    except WebSocketDisconnect:
        pass
    finally:
        await connection.stop()


class _Connection:
    def __init__(self, websocket: WebSocket, gateway: Gateway) -> None:
        self.websocket = websocket
        self.gateway = gateway
        self.headers: dict[str, str] = {}
        self.token: str | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.expiry: asyncio.TimerHandle | None = None
        # Operations answer concurrently; one frame goes out at a time.
        self.sending = asyncio.Lock()

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(self._receive(), INIT_TIMEOUT_SECONDS)
        except TimeoutError:
            raise _Closed(4408, "Connection initialisation timeout") from None
        if first.get("type") != "connection_init":
            raise _Closed(4401, "Unauthorized")
        await self._authenticate(first.get("payload"))
        await self._send({"type": "connection_ack"})
        while True:
            message = await self._receive()
            kind = message.get("type")
            if kind == "connection_init":
                raise _Closed(4429, "Too many initialisation requests")
            if kind == "ping":
                await self._send({"type": "pong"})
            elif kind == "pong":
                continue
            elif kind == "subscribe":
                self._start(message)
            elif kind == "complete":
                task = self.operations.pop(str(message.get("id")), None)
                if task is not None:
                    task.cancel()
            else:
                raise _Closed(4400, f"Unknown message type {kind!r}")

    async def stop(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        tasks = list(self.operations.values())
        self.operations.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive(self) -> dict[str, Any]:
        raw = await self.websocket.receive_text()
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Closed(4400, "Invalid message received") from None
        if not isinstance(message, dict):
            raise _Closed(4400, "Invalid message received")
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        async with self.sending:
            await self.websocket.send_text(orjson.dumps(message).decode())

    async def _authenticate(self, payload: Any) -> None:
        """Verify the init payload's token (as the HTTP path does) and close at its expiry."""
        value = None
        if isinstance(payload, dict):
            value = payload.get("authorization") or payload.get("Authorization")
        if not isinstance(value, str):
            raise _Closed(4403, "Forbidden: connection_init carries no authorization")
        verifier = self.gateway.verifier
        if verifier is not None:
            try:
                token = bearer_token(value)
                if token is None:
                    raise _Closed(4403, "Forbidden: no bearer token")
                await verifier.verify(token)
                self.token = token
            except CrmError as error:
                raise _Closed(4403, f"Forbidden: {error}") from None
            claims = jwt.decode(token, options={"verify_signature": False})
            seconds = float(claims.get("exp", time.time())) - time.time()
            loop = asyncio.get_running_loop()
            self.expiry = loop.call_later(max(seconds, 0), self._expire)
        self.headers = {"authorization": value}

    async def _still_authorized(self) -> bool:
        """Whether the connection's token still verifies (a cached check: revocation only)."""
        verifier = self.gateway.verifier
        if verifier is None or self.token is None:
            return True
        try:
            await verifier.verify(self.token)
        except CrmError:
            return False
        return True

    def _expire(self) -> None:
        asyncio.ensure_future(self.websocket.close(4403, "Forbidden: token expired"))

    def _start(self, message: dict[str, Any]) -> None:
        operation_id = message.get("id")
        payload = message.get("payload")
        if not isinstance(operation_id, str) or not isinstance(payload, dict):
            raise _Closed(4400, "Invalid subscribe message")
        if operation_id in self.operations:
            raise _Closed(4409, f"Subscriber for {operation_id} already exists")
        self.operations[operation_id] = asyncio.ensure_future(self._operate(operation_id, payload))

    async def _operate(self, operation_id: str, payload: dict[str, Any]) -> None:
        try:
            results = await self.gateway.subscribe(
                payload.get("query"),
                payload.get("variables"),
                payload.get("operationName"),
                self.headers,
                extensions=payload.get("extensions"),
            )
            if isinstance(results, GraphQLResponse):
                # Refused before execution: the protocol's error message, then nothing more.
                await self._send(
                    {"id": operation_id, "type": "error", "payload": results.body["errors"]}
                )
                return
            async for body in results:
                if not await self._still_authorized():
                    # Revoked since the socket opened: no further event reaches the caller.
                    asyncio.ensure_future(self.websocket.close(4403, "Forbidden: token revoked"))
                    return
                await self._send({"id": operation_id, "type": "next", "payload": body})
        except SubgraphError as error:
            await self._send(
                {
                    "id": operation_id,
                    "type": "error",
                    "payload": [{"message": error.message, "extensions": {"code": error.code}}],
                }
            )
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription %s failed", operation_id)
            await self._send(
                {
                    "id": operation_id,
                    "type": "error",
                    "payload": [
                        {
                            "message": "Internal gateway error",
                            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                        }
                    ],
                }
            )
            return
        finally:
            self.operations.pop(operation_id, None)
        await self._send({"id": operation_id, "type": "complete"})
