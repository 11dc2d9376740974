"""Connected accounts against the fake platforms: connecting with sealed tokens, pulling pages
with cursors, rate limits, a connector killed mid-page, publishing, disconnecting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from crm_shared import devstack
from crm_shared.db import Database, utcnow
from crm_shared.errors import BadUserInput
from crm_shared.sealed import KeyRing, SealedSecretError
from engagement.care import service as care
from engagement.connectors import service
from engagement.connectors.models import ConnectedAccount, ConnectorCursor, Publication
from engagement.ingestion.normalized import AuthorRef, NormalizedItem
from engagement.ingestion.service import ingest
from tests.engagement.connectors.conftest import (
    TOKEN_KEY,
    connect,
    make_settings,
    settings_env,
)
from tests.engagement.connectors.fake_platforms import FakePlatforms

pytestmark = pytest.mark.timeout(300)

RECORDED_X_IDS = {
    "1276035977375477760",
    "1275882613572583424",
    "1275763727908798470",
    "1275653067283759104",
}
RECORDED_REDDIT_IDS = {"t3_hozvuc", "t3_hozuhx", "t3_hozu24", "t3_hoztkv"}


async def stored_ids(db: Database, tenant_id: uuid.UUID, channel: str) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT platform_id FROM engagement.interactions "
                "WHERE tenant_id = :t AND channel = :c ORDER BY platform_id"
            ),
            {"t": tenant_id, "c": channel},
        )
        return [r[0] for r in rows]


async def recorded_events(db: Database, tenant_id: uuid.UUID, event_type: str) -> list[Any]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT envelope FROM engagement.outbox WHERE type = :type "
                "AND envelope->>'tenantid' = :tenant ORDER BY seq"
            ),
            {"type": event_type, "tenant": str(tenant_id)},
        )
        return [r[0]["data"] for r in rows]


async def account_row(db: Database, account_id: uuid.UUID) -> ConnectedAccount:
    async with db.session() as session:
        row = await session.get(ConnectedAccount, account_id)
        assert row is not None
        return row


async def round_of(db: Database, settings: Any, account_id: uuid.UUID) -> service.Pulled:
    async with service.http_client(settings) as http:
        return await service.run_account_round(
            db=db, settings=settings, account_id=account_id, http=http
        )


def test_the_key_ring_seals_opens_and_rotates() -> None:
    old, new = KeyRing.new_key(), KeyRing.new_key()
    sealed = KeyRing([old]).seal("access-token-1")
    assert "access-token-1" not in sealed
    rotated_ring = KeyRing([new, old])
    assert rotated_ring.open(sealed) == "access-token-1"
    assert not rotated_ring.is_current(sealed)
    resealed = rotated_ring.reseal(sealed)
    assert KeyRing([new]).open(resealed) == "access-token-1"
    with pytest.raises(SealedSecretError):
        KeyRing([old]).open(resealed)
    with pytest.raises(SealedSecretError):
        KeyRing([new]).open(resealed[:-4] + "AAAA")


async def test_connecting_x_keeps_only_sealed_tokens_and_declares_the_brand_account(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003")

    assert (account.channel, account.platform_user_id, account.handle) == (
        "x",
        "17200003",
        "TwitterDev",
    )
    assert set(account.scopes) == {"tweet.read", "tweet.write", "users.read", "offline.access"}
    issued = set(fake.access) | set(fake.refresh)
    assert account.access_token not in issued and account.refresh_token not in issued
    ring = KeyRing([TOKEN_KEY])
    assert ring.open(account.access_token or "") in fake.access
    assert ring.open(account.refresh_token or "") in fake.refresh
    async with db.session() as session:
        brand = await care.brand_account_keys(session=session, tenant_id=tenant)
    assert ("x", "17200003") in brand


async def test_a_used_or_made_up_state_is_refused_on_its_field(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake)
    async with service.http_client(settings) as http:
        with pytest.raises(BadUserInput) as refused:
            await service.complete_connection(
                db=db, settings=settings, tenant_id=uuid.uuid4(), state="nope", code="c", http=http
            )
    assert refused.value.field == "state"


async def test_an_expiring_token_is_refreshed_before_the_pull_and_the_rotated_one_kept(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    fake.access_ttl = 60  # within the 300 s margin: due at once
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003")
    first_refresh = KeyRing([TOKEN_KEY]).open(account.refresh_token or "")

    await round_of(db, settings, account.id)

    assert ("x", "refresh_token") in fake.token_grants
    assert first_refresh not in fake.refresh  # X spent it
    row = await account_row(db, account.id)
    assert KeyRing([TOKEN_KEY]).open(row.refresh_token or "") in fake.refresh
    assert row.last_error is None
    assert sorted(await stored_ids(db, tenant, "x")) == sorted(RECORDED_X_IDS)


async def test_pulling_x_mentions_pages_through_and_resumes_after_the_newest(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    fake.page_size = 2
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003")

    pulled = await round_of(db, settings, account.id)

    assert (pulled.pages, pulled.items) == (2, 4)
    assert sorted(await stored_ids(db, tenant, "x")) == sorted(RECORDED_X_IDS)
    recorded = await recorded_events(db, tenant, "engagement.interaction.recorded.v1")
    assert sorted(e["platform_id"] for e in recorded) == sorted(RECORDED_X_IDS)
    async with db.session() as session:
        cursor = await session.get(ConnectorCursor, (account.id, "mentions"))
    assert cursor is not None
    assert (cursor.high_water, cursor.page_token) == (f"{1276035977375477760:020d}", None)

    # The next round asks only for what is newer than the newest stored: nothing new.
    async with db.session() as session, session.begin():
        row = await session.get(ConnectedAccount, account.id)
        assert row is not None
        row.next_sync_at = None
        session.add(row)
    fake.requests.clear()
    again = await round_of(db, settings, account.id)
    assert again.items == 0
    assert fake.requests[0][2]["since_id"] == "1276035977375477760"
    assert len(await recorded_events(db, tenant, "engagement.interaction.recorded.v1")) == 4
    row = await account_row(db, account.id)
    assert row.last_sync_at is not None and row.newest_item_at is not None


async def test_the_platforms_rate_limit_headers_make_the_account_wait_until_the_reset(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    fake.page_size = 2
    fake.limit("mentions", 1, seconds=10)
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003")

    before = utcnow()
    pulled = await round_of(db, settings, account.id)
    # The first page used the window up (x-rate-limit-remaining: 0): stored, then it waits.
    assert pulled.pages == 1
    assert len(await stored_ids(db, tenant, "x")) == 2
    row = await account_row(db, account.id)
    assert row.rate_limited_until is not None
    # The header's reset (the 10 s window, rounded up), not a guess of our own (60 s).
    assert before < row.rate_limited_until <= utcnow() + timedelta(seconds=12)
    assert account.id not in await service.claim_due_accounts(db, settings, limit=50)
    assert [r for r in fake.requests if r[0] == "mentions"].__len__() == 1

    await asyncio.sleep((row.rate_limited_until - utcnow()).total_seconds() + 0.2)
    claimed = await service.claim_due_accounts(db, settings, limit=10)
    assert account.id in claimed
    await round_of(db, settings, account.id)
    assert sorted(await stored_ids(db, tenant, "x")) == sorted(RECORDED_X_IDS)
    assert len(await recorded_events(db, tenant, "engagement.interaction.recorded.v1")) == 4


async def test_a_429_with_its_reset_header_is_waited_out_not_counted_as_a_failure(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    fake.limit("mentions", 0, seconds=2)
    settings = make_settings(isolated, fake)
    account = await connect(
        db, settings, fake, tenant_id=uuid.uuid4(), channel="x", user_id="17200003"
    )
    await round_of(db, settings, account.id)
    row = await account_row(db, account.id)
    assert row.rate_limited_until is not None and row.rate_limited_until > utcnow()
    assert (row.failures, row.last_error) == (0, None)


CHAOS_RUNNER = """
import asyncio, sys, uuid
from crm_shared.db import Database
from engagement.connectors import service
from engagement.settings import EngagementSettings

async def main() -> None:
    settings = EngagementSettings()
    db = Database(settings)
    async with service.http_client(settings) as http:
        account_id = uuid.UUID(sys.argv[1])
        await service.run_account_round(db=db, settings=settings, account_id=account_id, http=http)

asyncio.run(main())
"""


@pytest.mark.parametrize("channel", ["x", "reddit"])
async def test_a_connector_killed_mid_page_resumes_with_no_gap_and_no_duplicate(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database, channel: str
) -> None:
    fake.page_size = 2
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    if channel == "x":
        account = await connect(
            db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003"
        )
        endpoint, second_page, expected = "mentions", "p2", RECORDED_X_IDS
    else:
        account = await connect(
            db,
            settings,
            fake,
            tenant_id=tenant,
            channel="reddit",
            user_id="3ebyblla",
            subreddits=["askreddit"],
        )
        endpoint, second_page, expected = "r/askreddit", "t3_hozuhx", RECORDED_REDDIT_IDS
    hold = fake.hold(endpoint, second_page)
    env = os.environ | settings_env(isolated, fake, connector_page_size=2)
    process = subprocess.Popen(
        [sys.executable, "-c", CHAOS_RUNNER, str(account.id)],
        env=env,
        cwd=devstack.REPO,
        start_new_session=True,
    )
    try:
        assert await asyncio.to_thread(hold.reached.wait, 120), "the connector never asked page 2"
        os.killpg(process.pid, signal.SIGKILL)  # mid-page: asked, not stored
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        hold.released.set()
    assert len(await stored_ids(db, tenant, channel)) == 2
    async with db.session() as session:
        cursor = await session.get(ConnectorCursor, (account.id, endpoint))
    assert cursor is not None and cursor.page_token == second_page

    # The killed worker's lease runs out; the next round resumes at the page not stored.
    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE engagement.connected_accounts SET lease_until = NULL WHERE id = :id"),
            {"id": account.id},
        )
    fake.requests.clear()
    await round_of(db, settings, account.id)

    first_request = next(r[2] for r in fake.requests if r[0] == endpoint)
    assert (first_request.get("pagination_token") or first_request.get("after")) == second_page
    stored = await stored_ids(db, tenant, channel)
    assert sorted(stored) == sorted(expected)  # no gap
    assert len(stored) == len(set(stored))  # no duplicate row
    announced = [
        e["platform_id"]
        for e in await recorded_events(db, tenant, "engagement.interaction.recorded.v1")
    ]
    assert sorted(announced) == sorted(expected)  # each announced exactly once


async def test_one_accounts_failure_is_recorded_on_it_and_does_not_stop_another_tenants(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake)
    failing_tenant, healthy_tenant = uuid.uuid4(), uuid.uuid4()
    failing = await connect(
        db,
        settings,
        fake,
        tenant_id=failing_tenant,
        channel="reddit",
        user_id="f1",
        subreddits=["broken"],
    )
    healthy = await connect(
        db,
        settings,
        fake,
        tenant_id=healthy_tenant,
        channel="reddit",
        user_id="h1",
        subreddits=["askreddit"],
    )
    fake.fail_status["r/broken"] = 503
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "UPDATE engagement.connected_accounts SET next_sync_at = NULL, lease_until = NULL "
                "WHERE tenant_id NOT IN (:a, :b)"
                " AND status = 'active'"
            ),
            {"a": failing_tenant, "b": healthy_tenant},
        )
        # Other tests' accounts are not this test's business: pause them.
        await session.execute(
            text(
                "UPDATE engagement.connected_accounts SET status = 'paused' "
                "WHERE tenant_id NOT IN (:a, :b)"
            ),
            {"a": failing_tenant, "b": healthy_tenant},
        )

    await service.sync_due(db, settings)

    broken = await account_row(db, failing.id)
    assert broken.failures == 1 and "503" in (broken.last_error or "")
    assert broken.next_sync_at is not None and broken.next_sync_at > utcnow() + timedelta(
        seconds=50
    )
    fine = await account_row(db, healthy.id)
    assert fine.last_error is None and fine.last_sync_at is not None
    assert sorted(await stored_ids(db, healthy_tenant, "reddit")) == sorted(RECORDED_REDDIT_IDS)


async def _complaint_case(db: Database, settings: Any, tenant: uuid.UUID) -> tuple[uuid.UUID, str]:
    """A customer's complaint on X (a case opens), answered by replyToCase."""
    item = NormalizedItem(
        channel="x",
        platform_id="1276035977375477760",
        kind="complaint",
        thread_id="1275653067283759104",
        author=AuthorRef(platform_user_id="63046977", handle="happycamper"),
        text="@snowman my order never arrived, awful",
        created_at=utcnow() - timedelta(minutes=5),
    )
    async with db.session() as session, session.begin():
        await ingest(session=session, tenant_id=tenant, items=[item], min_confidence=0.5)
    async with db.session() as session:
        case_id = (
            await session.execute(
                text("SELECT id FROM engagement.cases WHERE tenant_id = :t"), {"t": tenant}
            )
        ).scalar_one()
    async with db.session() as session, session.begin():
        _, interaction = await care.reply_to_case(
            session=session,
            tenant_id=tenant,
            case_id=case_id,
            text="Sorry! We sent you a DM.",
            replied_by="staff:agent",
            min_confidence=0.5,
        )
    return interaction.id, item.platform_id


async def test_a_care_reply_is_published_on_x_as_a_reply_and_takes_the_platforms_id(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003")
    interaction_id, customer_post = await _complaint_case(db, settings, tenant)
    # The publishing round queues the reply written on the connected account, once.
    assert await service.queue_care_replies(db) >= 1
    assert await service.queue_care_replies(db) == 0
    async with db.session() as session:
        publication = (
            await session.exec(
                select(Publication).where(Publication.interaction_id == interaction_id)
            )
        ).one()
    assert publication.status == "queued"

    assert await service.publish_due(db, settings) >= 1

    assert fake.x_posts[-1]["payload"] == {
        "text": "Sorry! We sent you a DM.",
        "reply": {"in_reply_to_tweet_id": customer_post},
    }
    assert fake.x_posts[-1]["user"] == account.platform_user_id
    async with db.session() as session:
        row = await session.get(Publication, publication.id)
        assert row is not None and row.status == "published"
        platform_id = (
            await session.execute(
                text("SELECT platform_id FROM engagement.interactions WHERE id = :id"),
                {"id": interaction_id},
            )
        ).scalar_one()
        status = (
            await session.execute(
                text(
                    "SELECT publish_status FROM engagement.case_replies WHERE interaction_id = :id"
                ),
                {"id": interaction_id},
            )
        ).scalar_one()
    assert platform_id == row.platform_id == fake.x_posts[-1]["id"]
    assert status == "published"
    events = await recorded_events(db, tenant, "engagement.publication.published.v1")
    assert [e["platform_id"] for e in events] == [platform_id]


async def test_a_reddit_comment_by_staff_is_published_and_stored_as_the_brands_interaction(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(
        db,
        settings,
        fake,
        tenant_id=tenant,
        channel="reddit",
        user_id="3ebyblla",
        subreddits=["askreddit"],
    )
    async with db.session() as session, session.begin():
        with pytest.raises(BadUserInput) as refused:
            await service.request_post(
                session=session,
                tenant_id=tenant,
                account_id=account.id,
                text_="hello",
                in_reply_to=None,
                requested_by="staff:m",
            )
    assert refused.value.field == "input.inReplyTo"
    async with db.session() as session, session.begin():
        publication = await service.request_post(
            session=session,
            tenant_id=tenant,
            account_id=account.id,
            text_="Comment reply",
            in_reply_to="t1_fx1ec2p",
            requested_by="staff:m",
        )

    await service.publish_due(db, settings)

    assert fake.reddit_comments[-1] == {
        "thing_id": "t1_fx1ec2p",
        "text": "Comment reply",
        "api_type": "json",
    }
    async with db.session() as session:
        row = await session.get(Publication, publication.id)
        assert row is not None
        stored = (
            await session.execute(
                text(
                    "SELECT platform_id, by_brand, parent_id FROM engagement.interactions "
                    "WHERE id = :id"
                ),
                {"id": row.interaction_id},
            )
        ).one()
    assert (row.status, row.platform_id) == ("published", "t1_fx1ie8s")
    assert tuple(stored) == ("t1_fx1ie8s", True, "t1_fx1ec2p")


async def test_a_platform_failure_is_retried_then_failed_with_the_platforms_error(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake, connector_publish_max_attempts=2)
    tenant = uuid.uuid4()
    account = await connect(db, settings, fake, tenant_id=tenant, channel="x", user_id="17200003")
    fake.fail_status["create"] = 503
    async with db.session() as session, session.begin():
        publication = await service.request_post(
            session=session,
            tenant_id=tenant,
            account_id=account.id,
            text_="Launch day!",
            in_reply_to=None,
            requested_by="staff:m",
        )
    await service.publish_due(db, settings)
    async with db.session() as session:
        row = await session.get(Publication, publication.id)
    assert row is not None and (row.status, row.attempts) == ("queued", 1)
    await asyncio.sleep(0.5)
    await service.publish_due(db, settings)
    async with db.session() as session:
        row = await session.get(Publication, publication.id)
    assert row is not None and (row.status, row.attempts) == ("failed", 2)
    assert "503" in (row.error or "")
    failed = await recorded_events(db, tenant, "engagement.publication.failed.v1")
    assert [e["publication_id"] for e in failed] == [str(publication.id)]
    assert [p for p in fake.x_posts if p["payload"]["text"] == "Launch day!"] == []


async def test_disconnecting_revokes_the_grant_and_forgets_the_tokens(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(
        db, settings, fake, tenant_id=tenant, channel="reddit", user_id="3ebyblla"
    )
    ring = KeyRing([TOKEN_KEY])
    access = ring.open(account.access_token or "")
    refresh = ring.open(account.refresh_token or "")
    async with service.http_client(settings) as http:
        gone = await service.disconnect(
            db=db, settings=settings, tenant_id=tenant, account_id=account.id, http=http
        )
    assert {access, refresh} <= fake.revoked
    assert (gone.status, gone.access_token, gone.refresh_token, gone.last_error) == (
        "disconnected",
        None,
        None,
        None,
    )
    assert account.id not in await service.claim_due_accounts(db, settings, limit=50)


RECORDED_YOUTUBE_IDS = {
    "UgyWeTdgc4sc1xgmbld4AaABAg",
    "Ugw5zYU6n9pmIgAZWvN4AaABAg",
    "Ugy0FhSzKMNMT9qs6zt4AaABAg",
    "UgwSRpgkjCe6OHHe3IJ4AaABAg",
}


async def test_youtube_pulls_the_channels_comment_threads_and_replies_to_a_comment(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    fake.page_size = 3
    settings = make_settings(isolated, fake)
    tenant = uuid.uuid4()
    account = await connect(
        db, settings, fake, tenant_id=tenant, channel="youtube", user_id="UCa-vrCLQHviTOVnEKDOdetQ"
    )
    assert (account.platform_user_id, account.handle) == ("UCa-vrCLQHviTOVnEKDOdetQ", "@ikarosdata")

    pulled = await round_of(db, settings, account.id)

    assert (pulled.pages, pulled.items) == (2, 4)
    assert sorted(await stored_ids(db, tenant, "youtube")) == sorted(RECORDED_YOUTUBE_IDS)
    async with db.session() as session, session.begin():
        publication = await service.request_post(
            session=session,
            tenant_id=tenant,
            account_id=account.id,
            text_="Thanks, see you there!",
            in_reply_to="UgyWeTdgc4sc1xgmbld4AaABAg",
            requested_by="staff:m",
        )
    await service.publish_due(db, settings)
    assert fake.youtube_comments[-1] == {
        "snippet": {
            "parentId": "UgyWeTdgc4sc1xgmbld4AaABAg",
            "textOriginal": "Thanks, see you there!",
        }
    }
    async with db.session() as session:
        row = await session.get(Publication, publication.id)
    assert row is not None and row.status == "published"
    assert (row.platform_id or "").startswith("UgyWeTdgc4sc1xgmbld4AaABAg.")


async def test_youtubes_quota_exceeded_makes_the_account_wait(
    isolated: devstack.Stack, fake: FakePlatforms, db: Database
) -> None:
    fake.limit("commentThreads", 0, seconds=60)
    settings = make_settings(isolated, fake)
    account = await connect(
        db,
        settings,
        fake,
        tenant_id=uuid.uuid4(),
        channel="youtube",
        user_id="UCa-vrCLQHviTOVnEKDOdetQ",
    )
    await round_of(db, settings, account.id)
    row = await account_row(db, account.id)
    assert row.rate_limited_until is not None and row.rate_limited_until > utcnow()
    assert row.failures == 0
