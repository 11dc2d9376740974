"""Re-ingestion by the platform's edit time, and the interaction graph written with the items
(in-process against the real database, no services)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from crm_shared import devstack
from crm_shared.db import Database
from engagement.community.reuse import service as reuse
from engagement.influence import service as influence
from engagement.influence.scoring import Rules
from engagement.ingestion.router import ANALYZED, refresh_statistics
from tests.conftest import settings_for
from tests.engagement.test_understanding_store import consent, link, store

AT = datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
async def db(isolated: devstack.Stack) -> AsyncIterator[Database]:
    database = Database(settings_for(isolated, "engagement"))
    yield database
    await database.dispose()


def item(platform_id: str, said: str, author: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "x",
        "platform_id": platform_id,
        "kind": "post",
        "text": said,
        "created_at": AT,
        "author": {"platform_user_id": author, "handle": f"{author}_handle"},
        **extra,
    }


async def row(db: Database, tenant: uuid.UUID, platform_id: str) -> Any:
    async with db.session() as session:
        found = await session.execute(
            text(
                "SELECT text, edited_at, sentiment_label, xmin::text AS version"
                " FROM engagement.interactions WHERE tenant_id = :t AND platform_id = :p"
            ),
            {"t": tenant, "p": platform_id},
        )
        return found.one()


async def edges(db: Database, tenant: uuid.UUID) -> list[tuple[str, str, str, int]]:
    """The graph the influence recomputation reads: (kind, source, target, count)."""
    async with db.session() as session:
        found = await session.execute(text(influence._EDGES), {"t": tenant})
        return sorted((r.kind, r.source, r.target, r.n) for r in found)


async def test_identical_data_again_changes_nothing_and_reports_no_update(db: Database) -> None:
    tenant = uuid.uuid4()
    batch = [
        item("a", "love it", "ann"),
        item("b", "hate it", "bob", edited_at=AT + timedelta(hours=1)),
    ]
    assert (await store(db, tenant, batch)).accepted == 2
    before = [await row(db, tenant, p) for p in ("a", "b")]
    again = await store(db, tenant, batch)
    assert (again.accepted, again.duplicates, again.updated) == (0, 2, 0)
    # Not rewritten either: the rows' versions are the same.
    assert [await row(db, tenant, p) for p in ("a", "b")] == before


async def test_only_a_newer_version_by_the_platforms_edit_time_replaces_an_item(
    db: Database,
) -> None:
    tenant = uuid.uuid4()
    one, two = AT + timedelta(hours=1), AT + timedelta(hours=2)
    await store(db, tenant, [item("p", "first words", "ann")])

    newer = await store(db, tenant, [item("p", "second thoughts", "ann", edited_at=two)])
    assert (newer.updated, newer.duplicates) == (1, 0)
    stored = await row(db, tenant, "p")
    # The edit time kept is the platform's, not the time it reached us.
    assert (stored.text, stored.edited_at) == ("second thoughts", two)

    # An older copy arriving late (the first edit, or the original) changes nothing.
    late = await store(
        db,
        tenant,
        [item("p", "an earlier edit", "ann", edited_at=one), item("p", "first words", "ann")],
    )
    assert (late.updated, late.duplicates) == (0, 2)
    assert await row(db, tenant, "p") == stored

    # Without an edit time a different text is no newer version: the stored one stays.
    unknown = await store(db, tenant, [item("p", "who knows when", "ann")])
    assert (unknown.updated, unknown.duplicates) == (0, 1)
    assert (await row(db, tenant, "p")).text == "second thoughts"


async def test_versions_within_one_batch_are_taken_in_order(db: Database) -> None:
    tenant = uuid.uuid4()
    one, two = AT + timedelta(hours=1), AT + timedelta(hours=2)
    report = await store(
        db,
        tenant,
        [
            item("q", "original", "ann"),
            item("q", "edit two", "ann", edited_at=two),
            item("q", "edit one, late", "ann", edited_at=one),
            item("q", "edit two", "ann", edited_at=two),
        ],
    )
    assert (report.accepted, report.updated, report.duplicates) == (1, 1, 2)
    stored = await row(db, tenant, "q")
    assert (stored.text, stored.edited_at) == ("edit two", two)


async def test_replies_and_shares_become_edges_whichever_end_comes_first(db: Database) -> None:
    tenant = uuid.uuid4()
    quote = {"post": {"referenced_tweets": [{"type": "quoted", "id": "root"}]}}
    # The reply and the quote arrive before the post they answer and share.
    await store(
        db,
        tenant,
        [
            item("r1", "so true", "fan", kind="reply", parent_id="root"),
            item("q1", "look at this", "other", raw=quote),
            item("r2", "replying to myself", "star", kind="reply", parent_id="root"),
        ],
    )
    assert await edges(db, tenant) == []
    await store(db, tenant, [item("root", "hello @fan_handle and @nobody", "star")])
    assert await edges(db, tenant) == [
        ("mention", "star", "fan", 1),
        ("reply", "fan", "star", 1),
        ("share", "other", "star", 1),
    ]
    # A later reply finds its parent at once; the counts add up.
    await store(db, tenant, [item("r3", "again", "fan", kind="reply", parent_id="root")])
    assert ("reply", "fan", "star", 2) in await edges(db, tenant)


async def test_an_edit_redraws_its_mentions_and_erasing_an_item_erases_its_edges(
    db: Database,
) -> None:
    tenant = uuid.uuid4()
    await store(
        db,
        tenant,
        [
            item("ann-post", "hi", "ann"),
            item("bob-post", "hi", "bob"),
            item("c1", "thanks @ann_handle", "cat"),
            item("c2", "nice", "cat", kind="reply", parent_id="ann-post"),
        ],
    )
    assert await edges(db, tenant) == [("mention", "cat", "ann", 1), ("reply", "cat", "ann", 1)]
    await store(
        db, tenant, [item("c1", "thanks @BOB_handle", "cat", edited_at=AT + timedelta(hours=1))]
    )
    assert await edges(db, tenant) == [("mention", "cat", "bob", 1), ("reply", "cat", "ann", 1)]
    async with db.session() as session, session.begin():
        await session.execute(
            text("DELETE FROM engagement.interactions WHERE tenant_id = :t AND platform_id = :p"),
            {"t": tenant, "p": "ann-post"},
        )
    # The reply's target is gone, and its edge with it (the reply itself stays).
    assert await edges(db, tenant) == [("mention", "cat", "bob", 1)]


async def test_a_batch_writes_its_edges_in_two_statements_whatever_its_size(
    db: Database,
) -> None:
    tenant = uuid.uuid4()
    batch = [item("top", "start", "a0")] + [
        item(f"r{i}", f"hey @a{i - 1}_handle", f"a{i}", kind="reply", parent_id="top")
        for i in range(1, 60)
    ]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "interaction_edges" in statement:
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert (await store(db, tenant, batch)).accepted == 60
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 2
    graph = await edges(db, tenant)
    assert sum(n for kind, *_, n in graph if kind == "reply") == 59
    assert sum(n for kind, *_, n in graph if kind == "mention") == 59


async def test_a_recomputation_that_runs_out_of_time_skips_its_tenant_and_not_the_job(
    db: Database,
) -> None:
    tenant, star = uuid.uuid4(), uuid.uuid4()
    await link(db, tenant, "star", star)
    await consent(db, tenant, star, True)
    await store(db, tenant, [item("s", "great", "star"), item("f", "@star_handle yes", "fan")])
    rules = Rules(min_score=0.5, advocate_min_sentiment=0.3, detractor_max_sentiment=-0.3)

    async def run_all() -> int:
        return await influence.recompute_all(
            db, rules=rules, damping=0.85, sentiment_days=30, statement_timeout_seconds=0.5
        )

    async def computed_at() -> Any:
        async with db.session() as session:
            run = await influence.last_run(session=session, tenant_id=tenant)
            return run.computed_at if run else None

    await run_all()
    first = await computed_at()
    assert first is not None
    # Someone holds the tenant's scores: the recomputation's lock waits past its timeout.
    async with db.session() as holder, holder.begin():
        await holder.execute(
            text("SELECT 1 FROM engagement.influence_scores WHERE tenant_id = :t FOR UPDATE"),
            {"t": tenant},
        )
        await run_all()  # returns: the tenant's round failed alone
        assert await computed_at() == first
    await run_all()
    assert await computed_at() > first


async def test_statistics_are_refreshed_for_the_planner_after_a_large_load(db: Database) -> None:
    async def analysed_at() -> dict[str, Any]:
        async with db.session() as session:
            found = await session.execute(
                text(
                    "SELECT relname, last_analyze FROM pg_stat_user_tables"
                    " WHERE schemaname = 'engagement' AND relname = ANY(:tables)"
                ),
                {"tables": list(ANALYZED)},
            )
            return {r.relname: r.last_analyze for r in found}

    def refreshed(now: dict[str, Any]) -> bool:
        return set(now) == set(ANALYZED) and all(
            at is not None and (before.get(table) is None or at > before[table])
            for table, at in now.items()
        )

    before = await analysed_at()
    await refresh_statistics(db)
    # The cumulative statistics reach other sessions within a second or so.
    for _ in range(40):
        if refreshed(await analysed_at()):
            break
        await asyncio.sleep(0.25)
    assert refreshed(await analysed_at())


async def test_the_authors_yes_reply_answers_the_reuse_request_when_it_is_stored(
    db: Database,
) -> None:
    tenant = uuid.uuid4()
    await store(db, tenant, [item("asked", "my photo", "ann", thread_id="t1")])
    async with db.session() as session, session.begin():
        asked = (
            await session.execute(
                text("SELECT id FROM engagement.interactions WHERE tenant_id = :t"),
                {"t": tenant},
            )
        ).scalar_one()
        request = await reuse.request_content_reuse(
            session=session,
            tenant_id=tenant,
            interaction_id=asked,
            purpose="Homepage",
            requested_by="staff",
        )

    def reply(platform_id: str, said: str, author: str) -> dict[str, Any]:
        return item(platform_id, said, author, kind="reply", parent_id="asked", thread_id="t1")

    # Someone else's #yes answers nothing; the author's does, twice in one batch only once.
    await store(db, tenant, [reply("r1", "#yes from me", "bob")])
    async with db.session() as session:
        found = await reuse.get_reuse_request(
            session=session, tenant_id=tenant, request_id=request.id
        )
        assert found is not None and found.status == "requested"
    report = await store(
        db, tenant, [reply("r2", "Sure, #yes!", "ann"), reply("r3", "#no, changed my mind", "ann")]
    )
    assert report.accepted == 2
    async with db.session() as session:
        found = await reuse.get_reuse_request(
            session=session, tenant_id=tenant, request_id=request.id
        )
    assert found is not None
    assert (found.status, found.answered_via) == ("granted", "reply")
