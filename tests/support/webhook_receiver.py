"""A real local HTTP server that receives webhooks and verifies them as a partner would, with
the ``standardwebhooks`` library; it answers the status codes it is told to, in order."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verifies_with(self, secret: str) -> bool:
        """Whether ``secret`` verifies this request (signature and timestamp)."""
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


@dataclass
class WebhookReceiver:
    """``await start()``, point an endpoint at ``url``, read ``received``; ``await stop()``."""

    answers: list[int] = field(default_factory=list)
    default: int = 204
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        status = self.answers.pop(0) if self.answers else self.default
        self.received.append(
            Received(
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.read(),
                answered=status,
            )
        )
        return web.Response(status=status)

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def of_type(self, event_type: str) -> list[Received]:
        """The requests that carried events of ``event_type``."""
        return [r for r in self.received if r.event["type"] == event_type]
