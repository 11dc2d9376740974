"""The webhook delivery loop: due attempts are claimed, sent signed, and their outcome kept.

Every replica runs it. A round claims due deliveries with ``FOR UPDATE SKIP LOCKED`` and
leases them (moves ``next_attempt_at`` past the request timeout) in a short transaction, sends
them concurrently outside any transaction, then records each outcome in its own. A replica
that dies mid-round leaves leased rows that come due again after the lease: at worst a
duplicate, which receivers drop by ``webhook-id``.

Before anything is sent the round checks ``partner_sharing`` (:mod:`identity.partners.sharing`)
for every claimed delivery, on every attempt (retries and replays included): a delivery whose
event is about a customer who has not granted it (or withdrew it meanwhile) is not sent and
ends ``withheld``, with the reason as its last error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from crm_shared.app import PeriodicJob
from crm_shared.db import Database, utcnow
from crm_shared.events import Envelope
from crm_shared.outbound import guarded_client
from identity.partners import service, sharing, signing
from identity.partners.models import DeliveryStatus, WebhookAttempt
from identity.settings import IdentitySettings

_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id FROM identity.webhook_deliveries d
        JOIN identity.webhook_endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND e.disabled_at IS NULL
          AND (e.client_id IS NULL OR EXISTS (
              SELECT 1 FROM identity.api_clients c WHERE c.id = e.client_id AND c.active))
        ORDER BY d.next_attempt_at
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE identity.webhook_deliveries d SET next_attempt_at = :lease
    FROM due, identity.webhook_endpoints e, identity.webhook_events ev
    WHERE d.id = due.id AND e.id = d.endpoint_id AND ev.id = d.event_id
    RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.attempts, d.deadline,
              e.url, e.secret, e.previous_secret, e.previous_secret_expires_at, ev.envelope
    """
)


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt, with what it takes to send it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    deadline: datetime
    url: str
    secrets: tuple[str, ...]
    body: bytes
    envelope: Envelope


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    latency_ms: float
    at: datetime

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claimed(row: Any, now: datetime) -> Claimed:
    valid = [row.secret]
    if (
        row.previous_secret
        and row.previous_secret_expires_at
        and row.previous_secret_expires_at > now
    ):
        valid.append(row.previous_secret)
    return Claimed(
        id=row.id,
        tenant_id=row.tenant_id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        attempts=row.attempts,
        deadline=row.deadline,
        url=row.url,
        secrets=tuple(valid),
        body=orjson.dumps(row.envelope),
        envelope=Envelope.model_validate(row.envelope),
    )


async def _send(client: httpx.AsyncClient, claimed: Claimed) -> Outcome:
    at = utcnow()
    headers = signing.headers(
        claimed.secrets,
        msg_id=str(claimed.event_id),
        timestamp=int(at.timestamp()),
        body=claimed.body,
    )
    started = time.perf_counter()
    try:
        response = await client.post(claimed.url, content=claimed.body, headers=headers)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        return Outcome(None, error, (time.perf_counter() - started) * 1000, at)
    return Outcome(response.status_code, None, (time.perf_counter() - started) * 1000, at)


async def _record(
    db: Database, claimed: Claimed, outcome: Outcome, settings: IdentitySettings
) -> None:
    attempt = claimed.attempts + 1
    async with db.session() as session, session.begin():
        session.add(
            WebhookAttempt(
                tenant_id=claimed.tenant_id,
                delivery_id=claimed.id,
                attempted_at=outcome.at,
                status_code=outcome.status_code,
                error=outcome.error,
                latency_ms=outcome.latency_ms,
            )
        )
        now = utcnow()
        status, next_at, completed = DeliveryStatus.PENDING, None, None
        if outcome.succeeded:
            status, completed = DeliveryStatus.SUCCEEDED, now
        elif outcome.status_code == 410:
            status, completed = DeliveryStatus.FAILED, now
            await service.disable_for_failures(
                session=session,
                endpoint_id=claimed.endpoint_id,
                reason="the endpoint answered 410 Gone",
            )
        else:
            delay = signing.retry_delay(
                attempt,
                base=settings.webhook_retry_base_seconds,
                cap=settings.webhook_retry_max_seconds,
            )
            next_at = now + timedelta(seconds=delay)
            if next_at > claimed.deadline:
                status, next_at, completed = DeliveryStatus.FAILED, None, now
                await service.disable_for_failures(
                    session=session,
                    endpoint_id=claimed.endpoint_id,
                    reason=f"retries exhausted after {attempt} attempts",
                )
        await session.execute(
            text(
                "UPDATE identity.webhook_deliveries SET attempts = :attempts, status = :status,"
                " next_attempt_at = :next, completed_at = :completed, last_status_code = :code,"
                " last_error = :error WHERE id = :id"
            ),
            {
                "attempts": attempt,
                "status": status.value,
                "next": next_at,
                "completed": completed,
                "code": outcome.status_code,
                "error": outcome.error,
                "id": claimed.id,
            },
        )


async def _withhold(db: Database, claimed: Claimed, reason: str) -> None:
    """End a delivery unsent: the event may not reach partners (no attempt is made)."""
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "UPDATE identity.webhook_deliveries SET status = :status, next_attempt_at = NULL,"
                " completed_at = :now, last_error = :reason WHERE id = :id"
            ),
            {
                "status": DeliveryStatus.WITHHELD.value,
                "now": utcnow(),
                "reason": reason,
                "id": claimed.id,
            },
        )
    sharing.withheld_events.add(1, {"event_type": claimed.envelope.type, "channel": "webhook"})


def webhook_client(settings: IdentitySettings) -> httpx.AsyncClient:
    """The HTTP client deliveries are sent with: the guarded one (no internal addresses, the
    address checked is the one connected to, no redirects)."""
    return guarded_client(settings.outbound_policy, timeout=settings.webhook_timeout_seconds)


async def deliver_due(
    db: Database, *, settings: IdentitySettings, client: Callable[[], httpx.AsyncClient]
) -> int:
    """Send every due attempt (batch by batch until none is due); returns how many were sent
    (withheld ones are not).
    ``client`` gives the HTTP client, asked for only when there is something to send."""
    sent = 0
    while True:
        now = utcnow()
        lease = now + timedelta(seconds=settings.webhook_timeout_seconds + 30)
        async with db.session() as session, session.begin():
            rows = (
                await session.execute(
                    _CLAIM, {"now": now, "lease": lease, "limit": settings.webhook_batch_size}
                )
            ).all()
        claimed = [_claimed(row, now) for row in rows]
        if not claimed:
            return sent
        async with db.session() as session:
            reasons = await sharing.withheld(session, [c.envelope for c in claimed])
        sendable = []
        for delivery, reason in zip(claimed, reasons, strict=True):
            if reason is None:
                sendable.append(delivery)
            else:
                await _withhold(db, delivery, reason)
        if sendable:
            http = client()
            outcomes = await asyncio.gather(*(_send(http, c) for c in sendable))
            for delivery, outcome in zip(sendable, outcomes, strict=True):
                await _record(db, delivery, outcome, settings)
                sharing.shared_events.add(
                    1, {"event_type": delivery.envelope.type, "channel": "webhook"}
                )
        sent += len(sendable)
        if len(claimed) < settings.webhook_batch_size:
            return sent


async def forget_old_events(db: Database, *, settings: IdentitySettings) -> int:
    """Drop kept events past their retention."""
    cutoff = utcnow() - timedelta(days=settings.webhook_event_retention_days)
    async with db.session() as session, session.begin():
        return await service.forget_old_events(session=session, older_than=cutoff)


def webhook_jobs(settings: IdentitySettings) -> list[PeriodicJob]:
    """The delivery loop and the retention clean-up, for ``create_service_app(jobs=...)``."""

    clients: list[httpx.AsyncClient] = []

    def client() -> httpx.AsyncClient:
        # One client for the process's life (its pool and TLS context are reused).
        if not clients:
            clients.append(webhook_client(settings))
        return clients[0]

    async def deliver(db: Database) -> int:
        return await deliver_due(db, settings=settings, client=client)

    async def forget(db: Database) -> int:
        return await forget_old_events(db, settings=settings)

    return [
        PeriodicJob("webhook-delivery", settings.webhook_poll_seconds, deliver),
        PeriodicJob("webhook-retention", 3_600.0, forget),
    ]
