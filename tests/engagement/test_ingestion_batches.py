"""Streamed NDJSON ingestion: batches merged idempotently, announced once, reported in order."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events import Envelope
from crm_shared.events.outbox import wrapped_envelope
from engagement.interactions.events import InteractionRecorded
from tests.engagement.conftest import new_id, outbox, post

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("traced", [False, True])
def test_the_batch_outbox_writes_the_envelope_wrap_would(traced: bool) -> None:
    event = InteractionRecorded(
        interaction_id=uuid.uuid4(),
        customer_id=None,
        channel="x",
        kind="reply",
        platform_id="p-1",
        thread_id=None,
        platform_user_id="u-1",
        handle=None,
        sentiment=-0.4215,
        sentiment_label="negative",
        language="en",
        occurred_at=datetime(2024, 5, 3, 9, 0, tzinfo=UTC),
        tracker_ids=[uuid.uuid4()],
        brand_mentioned=True,
    )
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    envelope, body = wrapped_envelope(
        event,
        source="/crm/engagement",
        tenant_id=uuid.uuid4(),
        subject="s-1",
        trace_headers=trace if traced else {},
    )
    reference = Envelope.wrap(
        event,
        source="/crm/engagement",
        tenant_id=envelope.tenantid,
        subject="s-1",
        trace_headers=trace if traced else {},
    ).model_copy(update={"id": envelope.id, "time": envelope.time})
    assert body == reference.to_json()
    assert envelope == reference
    assert envelope.routing_key == reference.routing_key


def line(platform_id: str, author: str, text_: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "channel": "other",
            "platform_id": platform_id,
            "kind": "comment",
            "thread_id": "batches",
            "author": {"platform_user_id": author},
            "text": text_,
            "created_at": "2024-05-03T09:00:00Z",
            **extra,
        }
    )


async def ndjson(stack: devstack.Stack, writer: str, lines: list[bytes]) -> Any:
    response = await post(
        stack,
        "/ingest/ndjson",
        token=writer,
        content=b"\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def stored(db: Database, tenant: str, prefix: str) -> Counter[str]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT platform_id FROM engagement.interactions WHERE tenant_id = :t "
                "AND platform_id LIKE :p"
            ),
            {"t": tenant, "p": f"{prefix}%"},
        )
        return Counter(r[0] for r in rows)


async def test_the_same_batch_twice_is_stored_and_announced_once(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    run = new_id()
    lines = [line(f"{run}-{i}", f"{run}-author-{i % 3}", f"comment number {i}") for i in range(7)]

    first = await ndjson(stack, writer, lines)
    again = await ndjson(stack, writer, lines)

    assert (first["accepted"], first["duplicates"], first["updated"]) == (7, 0, 0)
    assert (again["accepted"], again["duplicates"], again["updated"]) == (0, 7, 0)
    assert await stored(engagement_db, tenant, run) == Counter({f"{run}-{i}": 1 for i in range(7)})
    recorded = await outbox(engagement_db, tenant, "engagement.interaction.recorded.v1")
    assert sorted(e["platform_id"] for e in recorded) == sorted(f"{run}-{i}" for i in range(7))
    seen = await outbox(engagement_db, tenant, "engagement.author.seen.v1")
    assert sorted(e["platform_user_id"] for e in seen) == [f"{run}-author-{i}" for i in range(3)]


async def test_an_item_repeated_within_a_batch_is_new_then_a_duplicate_or_an_edit(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    run = new_id()
    result = await ndjson(
        stack,
        writer,
        [
            line(f"{run}-a", "ann", "first words"),
            line(f"{run}-a", "ann", "first words"),
            line(f"{run}-a", "ann", "second thoughts", edited_at="2024-05-03T09:05:00Z"),
        ],
    )
    assert (result["accepted"], result["duplicates"], result["updated"]) == (1, 1, 1)
    assert await stored(engagement_db, tenant, run) == Counter({f"{run}-a": 1})
    recorded = await outbox(engagement_db, tenant, "engagement.interaction.recorded.v1")
    assert [e["platform_id"] for e in recorded] == [f"{run}-a"]  # an edit is not announced
    async with engagement_db.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT text, edited_at IS NOT NULL FROM engagement.interactions "
                    "WHERE tenant_id = :t AND platform_id = :p"
                ),
                {"t": tenant, "p": f"{run}-a"},
            )
        ).one()
    assert tuple(row) == ("second thoughts", True)


async def test_a_stream_of_several_batches_reports_every_line_in_order(
    stack: devstack.Stack, tenant: str, writer: str, engagement_db: Database
) -> None:
    # More than two batches of ENGAGEMENT_INGEST_BATCH_SIZE (500): read, analysed and stored
    # overlapped, the report still counts each line once and lists rejections by line.
    run = new_id()
    lines = [line(f"{run}-{i}", f"{run}-author-{i % 50}", f"item {i}") for i in range(1_300)]
    lines[3] = b"not json"
    lines[700] = b'{"channel": "myspace"}'
    lines[1_299] = b"{"
    lines.insert(900, b"")  # a keep-alive blank line: skipped, but it has a number

    result = await ndjson(stack, writer, lines)

    assert (result["accepted"], result["duplicates"], result["updated"]) == (1_297, 0, 0)
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [
        (3, "line"),
        (700, "channel"),
        (1_300, "line"),
    ]
    assert len(await stored(engagement_db, tenant, run)) == 1_297
    # Each author is announced once, before its first interaction (the outbox's order).
    async with engagement_db.session() as session:
        rows = await session.execute(
            text(
                "SELECT type, envelope->'data' FROM engagement.outbox "
                "WHERE envelope->>'tenantid' = :t ORDER BY seq"
            ),
            {"t": tenant},
        )
        events = [(r[0], r[1]) for r in rows]
    announced: set[str] = set()
    for kind, data in events:
        if kind == "engagement.author.seen.v1":
            assert data["platform_user_id"] not in announced
            announced.add(data["platform_user_id"])
        elif kind == "engagement.interaction.recorded.v1":
            assert data["platform_user_id"] in announced
    assert len(announced) == 50
    recorded = [d["platform_id"] for k, d in events if k == "engagement.interaction.recorded.v1"]
    numbers = [int(p.rsplit("-", 1)[1]) for p in recorded]
    assert numbers == sorted(numbers)  # stored, and announced, in the stream's order
