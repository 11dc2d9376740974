"""The HTTP ingestion endpoints: each takes a platform's own documented payload.

Every endpoint answers 200 with a :class:`Report`; malformed items are rejected one by one
(with their position and field) while the rest are stored. A body that is not the platform's
shape answers 422, one that is not JSON 400. Bearer tokens need ``interactions:write``;
Meta's webhooks carry none and are trusted by their signature instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from crm_shared.auth import Permission, Principal
from crm_shared.db import Database
from crm_shared.errors import CrmError, Forbidden, NotFound, Unauthenticated
from crm_shared.http import requires
from engagement.ingestion import platforms
from engagement.ingestion.normalized import MalformedBody, NormalizedItem, Parsed, Rejection, Report
from engagement.ingestion.service import Analysis, analyse, ingest
from engagement.settings import EngagementSettings

Writer = Annotated[Principal, Depends(requires(Permission.INTERACTIONS_WRITE))]
HubMode = Annotated[str | None, Query(alias="hub.mode")]
HubToken = Annotated[str | None, Query(alias="hub.verify_token")]
HubChallenge = Annotated[str | None, Query(alias="hub.challenge")]

log = logging.getLogger(__name__)

# NDJSON batches read and analysed ahead of the one being stored.
BATCHES_AHEAD = 2


class BodyTooLarge(CrmError):
    """The body is larger than the endpoint takes in one request."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


def ingestion_router(settings: EngagementSettings) -> APIRouter:  # noqa: C901 (to split, issue 18)
    """The ``/ingest/...`` endpoints."""
    router = APIRouter(prefix="/ingest", tags=["ingestion"])

    async def read_body(request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > settings.ingest_max_body_bytes:
                raise BodyTooLarge(
                    f"body: larger than {settings.ingest_max_body_bytes} bytes; "
                    "send NDJSON to /ingest/ndjson",
                    field="body",
                )
        return bytes(body)

    async def analysed(
        db: Database, tenant_id: uuid.UUID, items: list[NormalizedItem]
    ) -> list[Analysis]:
        """The items' analysis, made before (and outside) the transaction that stores them."""
        async with db.session() as session:
            return await analyse(
                session=session,
                tenant_id=tenant_id,
                items=items,
                min_confidence=settings.language_min_confidence,
            )

    async def store_batch(
        db: Database, tenant_id: uuid.UUID, items: list[NormalizedItem], analysis: list[Analysis]
    ) -> Report:
        """Store analysed items in one transaction."""
        async with db.session() as session, session.begin():
            counts, _ = await ingest(
                session=session,
                tenant_id=tenant_id,
                items=items,
                min_confidence=settings.language_min_confidence,
                analysis=analysis,
            )
        return counts

    # Statistics refreshes running after large loads (kept referenced until done).
    refreshing: set[asyncio.Task[None]] = set()

    def after_load(db: Database, report: Report) -> Report:
        """A large load refreshes the planner's statistics, in the background."""
        threshold = settings.ingest_analyze_after_rows
        if threshold and report.accepted >= threshold:
            task = asyncio.create_task(refresh_statistics(db))
            refreshing.add(task)
            task.add_done_callback(refreshing.discard)
        return report

    async def store(request: Request, tenant_id: uuid.UUID, parsed: Iterable[Parsed]) -> Report:
        """Store a whole request's items in one transaction."""
        report = Report()
        items = _collect(parsed, report)
        db: Database = request.app.state.db
        if items:
            analysis = await analysed(db, tenant_id, items)
            report.add(await store_batch(db, tenant_id, items, analysis))
        return after_load(db, report)

    @router.post("/x", response_model=Report)
    async def ingest_x(request: Request, principal: Writer) -> Report:
        """An X API v2 response, or filtered-stream NDJSON (one response per line)."""
        body = await read_body(request)
        if _is_ndjson(request, body):
            parsed: list[Parsed] = []
            positions = platforms._Positions()
            for number, line in _lines(body):
                try:
                    parsed.extend(platforms.parse_x(_json_line(line, number), positions))
                except CrmError as exc:
                    index = positions.take()
                    field = f"line {number}: {exc.field or 'body'}"
                    parsed.append(
                        (index, Rejection(index=index, id=None, field=field, message=exc.message))
                    )
            return await store(request, principal.tenant_id, parsed)
        return await store(request, principal.tenant_id, platforms.parse_x(_json(body)))

    @router.post("/youtube", response_model=Report)
    async def ingest_youtube(request: Request, principal: Writer) -> Report:
        """A ``youtube#commentThreadListResponse`` or one ``youtube#commentThread``."""
        body = _json(await read_body(request))
        return await store(request, principal.tenant_id, platforms.parse_youtube(body))

    @router.post("/reddit", response_model=Report)
    async def ingest_reddit(request: Request, principal: Writer) -> Report:
        """A Reddit ``Listing`` of ``t1`` comments and ``t3`` posts."""
        body = _json(await read_body(request))
        return await store(request, principal.tenant_id, platforms.parse_reddit(body))

    @router.post("/normalized", response_model=Report)
    async def ingest_normalized(request: Request, principal: Writer) -> Report:
        """A JSON list of interactions in our normalized form."""
        body = _json(await read_body(request))
        return await store(request, principal.tenant_id, platforms.parse_normalized(body))

    @router.post("/ndjson", response_model=Report)
    async def ingest_ndjson(request: Request, principal: Writer) -> Report:
        """Normalized interactions, one per line, read as a stream and stored in batches.

        Reading, analysing and storing overlap: while one batch is stored, the next is read,
        parsed and analysed, and no more than ``BATCHES_AHEAD`` wait analysed (so a
        slow database slows the reading of the body instead of filling the memory).
        """
        report = Report()
        db: Database = request.app.state.db
        tenant_id = principal.tenant_id
        # Analysed batches waiting to be stored; the reader waits while it is full.
        ready: asyncio.Queue[_Batch | Exception | None] = asyncio.Queue(maxsize=BATCHES_AHEAD)

        async def analysed_batch(batch: _Batch) -> _Batch:
            batch.analysis = await analysed(db, tenant_id, batch.items)
            return batch

        async def read() -> None:
            try:
                batch = _Batch()
                async for number, line in _stream_lines(request):
                    try:
                        data: Any = _json_line(line, number)
                    except MalformedBody as exc:
                        batch.report.rejected.append(
                            Rejection(index=number, id=None, field="line", message=exc.message)
                        )
                        continue
                    batch.items.extend(
                        _collect([platforms.parse_normalized_item(number, data)], batch.report)
                    )
                    if len(batch.items) >= settings.ingest_batch_size:
                        await ready.put(await analysed_batch(batch))
                        batch = _Batch()
                await ready.put(await analysed_batch(batch))
                await ready.put(None)
            except Exception as exc:  # a broken body, the database: the request fails with it
                await ready.put(exc)

        reader = asyncio.create_task(read())
        try:
            while (batch := await ready.get()) is not None:
                if isinstance(batch, Exception):
                    raise batch
                report.add(batch.report)
                if batch.items:
                    report.add(await store_batch(db, tenant_id, batch.items, batch.analysis))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return after_load(db, report)

    def verify_signature(tenant_id: uuid.UUID, body: bytes, header: str | None) -> None:
        secret = settings.meta_secret_for(str(tenant_id))
        if secret is None:
            raise Unauthenticated("no Meta app secret is configured for this tenant")
        if not header or not header.startswith("sha256="):
            raise Unauthenticated("X-Hub-Signature-256 is missing (sha256=<hex HMAC of the body>)")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower()):
            raise Unauthenticated("X-Hub-Signature-256 does not match the body")

    async def meta_delivery(request: Request, tenant_id: uuid.UUID) -> Report:
        body = await read_body(request)
        verify_signature(tenant_id, body, request.headers.get("x-hub-signature-256"))
        return await store(request, tenant_id, platforms.parse_meta(_json(body)))

    @router.post("/meta/{tenant_id}", response_model=Report)
    async def ingest_meta_webhook(request: Request, tenant_id: str) -> Report:
        """A Meta webhook delivery for the tenant in the path, trusted by its signature."""
        return await meta_delivery(request, _tenant(tenant_id))

    @router.post("/meta", response_model=Report)
    async def ingest_meta(request: Request, principal: Writer) -> Report:
        """A Meta webhook delivery forwarded with a bearer token (still signed by Meta)."""
        return await meta_delivery(request, principal.tenant_id)

    def handshake(mode: str | None, token: str | None, challenge: str | None) -> PlainTextResponse:
        expected = settings.meta_verify_token
        if mode != "subscribe" or expected is None or challenge is None:
            raise Forbidden("not a subscription handshake this service accepts")
        if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Forbidden("hub.verify_token does not match")
        return PlainTextResponse(challenge)

    @router.get("/meta/{tenant_id}", response_class=PlainTextResponse)
    async def meta_handshake_for_tenant(
        tenant_id: str, mode: HubMode = None, token: HubToken = None, challenge: HubChallenge = None
    ) -> PlainTextResponse:
        """Meta's subscription handshake: echo ``hub.challenge`` if the verify token matches."""
        _tenant(tenant_id)
        return handshake(mode, token, challenge)

    @router.get("/meta", response_class=PlainTextResponse)
    async def meta_handshake(
        mode: HubMode = None, token: HubToken = None, challenge: HubChallenge = None
    ) -> PlainTextResponse:
        """Meta's subscription handshake on the path without a tenant."""
        return handshake(mode, token, challenge)

    return router


# The tables a large load changes the shape of, for the planner.
ANALYZED = ("interactions", "interaction_edges", "authors", "interaction_trackers")


async def refresh_statistics(db: Database) -> None:
    """``ANALYZE`` the tables a load filled: a job planned on statistics from before a large
    import (a new tenant's first, most of all) may pick nested loops over millions of rows.
    Autovacuum would get there too, but only after its own thresholds and naptime."""
    try:
        async with db.session() as session, session.begin():
            tables = ", ".join(f"{session.info['schema']}.{t}" for t in ANALYZED)
            await session.execute(text(f"ANALYZE {tables}"))
    except Exception:  # statistics are an optimisation: a failure only waits for autovacuum
        log.exception("refreshing the statistics after a large load failed")


@dataclass
class _Batch:
    """NDJSON lines read: the items to store, their analysis, what was rejected or ignored."""

    items: list[NormalizedItem] = field(default_factory=list)
    analysis: list[Analysis] = field(default_factory=list)
    report: Report = field(default_factory=Report)


def _tenant(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such tenant") from None


def _collect(parsed: Iterable[Parsed], report: Report) -> list[NormalizedItem]:
    """The items to store; rejections and ignored items counted in ``report``."""
    items: list[NormalizedItem] = []
    for _, outcome in parsed:
        if outcome is None:
            report.ignored += 1
        elif isinstance(outcome, Rejection):
            report.rejected.append(outcome)
        else:
            items.append(outcome)
    return items


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body: not valid JSON ({exc})", field="body") from None


def _json_line(line: bytes, number: int) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"line {number}: not valid JSON ({exc})", field="line") from None


def _is_ndjson(request: Request, body: bytes) -> bool:
    content_type = request.headers.get("content-type", "")
    if "ndjson" in content_type or "jsonl" in content_type:
        return True
    return body.strip().count(b"\n") > 0 and _parses_as_lines(body)


def _parses_as_lines(body: bytes) -> bool:
    try:
        orjson.loads(body)
        return False
    except orjson.JSONDecodeError:
        return True


def _lines(body: bytes) -> Iterable[tuple[int, bytes]]:
    """Non-blank lines with their 0-based numbers (the stream's keep-alive blank lines skipped)."""
    for number, line in enumerate(body.split(b"\n")):
        if line.strip():
            yield number, line


async def _stream_lines(request: Request) -> AsyncIterator[tuple[int, bytes]]:
    """The body's non-blank lines as they arrive, with their 0-based numbers."""
    buffer = b""
    number = 0
    async for chunk in request.stream():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield number, line
            number += 1
    if buffer.strip():
        yield number, buffer
