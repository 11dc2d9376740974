"""Revocation within seconds: principals whose tokens issued before a moment are refused.

Identity keeps, per principal (tenant, kind, subject), a "not before" moment: set when a staff
user is deactivated or changes role, or an API client is revoked. It lists the moments that
may still matter (younger than the longest token lifetime) at ``GET /auth/revocations``; every
process that verifies tokens (the gateway, each subgraph) keeps that list in memory and reads
it again every ``refresh_seconds`` in the background, so a revoked token stops working within
about that long everywhere. Checking a token costs two dictionary lookups.

If identity cannot be reached the last list is kept (tokens are short-lived and signed; an
identity outage must not stop every service) and a warning is logged each round.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

log = logging.getLogger(__name__)

# (tenant id, principal kind, subject): how tokens name whom they stand for.
RevocationKey = tuple[str, str, str]
RevocationFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


def http_revocations(url: str, *, timeout: float = 2.0) -> RevocationFetcher:
    """A fetcher of the revocation list identity serves at ``url``."""

    async def fetch() -> Mapping[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            body: Mapping[str, Any] = response.json()
            return body

    return fetch


def revocation_keys(claims: Mapping[str, Any]) -> tuple[RevocationKey, ...]:
    """The principals a token stands for: its subject, and for a customer token the client
    that obtained it (``azp``), so revoking a front end ends its customers' tokens too."""
    tenant = str(claims.get("tid"))
    keys: list[RevocationKey] = [(tenant, str(claims.get("typ")), str(claims.get("sub")))]
    party = claims.get("azp")
    if party:
        keys.append((tenant, "client", str(party)))
    return tuple(keys)


class RevocationList:
    """The revoked principals identity lists, refreshed in the background."""

    def __init__(
        self,
        fetch: RevocationFetcher,
        *,
        refresh_seconds: float = 2.0,
        wait_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.refresh_seconds = refresh_seconds
        # A list older than a few refreshes (idle process, stalled loop) is read again before
        # the request is answered, waiting at most this long.
        self._stale_seconds = 3 * refresh_seconds
        self._wait_seconds = wait_seconds
        self._clock = clock
        self._not_before: dict[RevocationKey, float] = {}
        self._fetched_at = -math.inf
        self._task: asyncio.Task[None] | None = None

    def load(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Replaces the list with ``entries`` (``tid``, ``typ``, ``sub``, ``nbf`` in epoch s)."""
        self._not_before = {
            (str(e["tid"]), str(e["typ"]), str(e["sub"])): float(e["nbf"]) for e in entries
        }

    async def refresh(self) -> None:
        """Reads the list again now (a failure keeps the last one)."""
        try:
            body = await self._fetch()
            self.load(body.get("revocations", []))
        except Exception as exc:  # noqa: BLE001 - keep serving with the last list
            log.warning("could not read the revocation list: %s", exc)
        self._fetched_at = self._clock()

    async def fresh(self) -> None:
        """Starts a background read when the list is older than ``refresh_seconds``; waits for
        it when the list is stale (never read, or older than three refreshes)."""
        age = self._clock() - self._fetched_at
        if age < self.refresh_seconds:
            return
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._task = loop.create_task(self.refresh(), name="revocation-refresh")
        if age >= self._stale_seconds:
            try:
                await asyncio.wait_for(asyncio.shield(task), self._wait_seconds)
            except TimeoutError:
                log.warning("the revocation list took over %.1fs to read", self._wait_seconds)

    def revoked(self, keys: Iterable[RevocationKey], issued_at: float) -> bool:
        """Whether a token issued at ``issued_at`` (epoch seconds) for ``keys`` is revoked."""
        for key in keys:
            not_before = self._not_before.get(key)
            if not_before is not None and issued_at < not_before:
                return True
        return False

    def __len__(self) -> int:
        return len(self._not_before)
