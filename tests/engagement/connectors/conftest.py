"""Connectors' tests: the fake platforms on 127.0.0.1, engagement's database of the isolated
stack (no services running: the connector runs in-process, or in a process the test kills)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.sealed import KeyRing
from engagement.connectors import service
from engagement.connectors.models import ConnectedAccount
from engagement.settings import EngagementSettings
from tests.conftest import AMQP_BASE, PORT_BASE
from tests.engagement.connectors.fake_platforms import FakePlatforms

TOKEN_KEY = KeyRing.new_key()
# The running stack's engagement reaches the fakes of the GraphQL tests on a port of this run's
# range; set at collection, before any service starts (the services inherit the environment).
STACK_FAKE_PORT = PORT_BASE + 40
os.environ.setdefault("ENGAGEMENT_CONNECTOR_TOKEN_KEYS", json.dumps([TOKEN_KEY]))
os.environ.setdefault("ENGAGEMENT_CONNECTOR_APPS", json.dumps(FakePlatforms.apps()))
os.environ.setdefault(
    "ENGAGEMENT_CONNECTOR_URLS", json.dumps(FakePlatforms.urls_at(STACK_FAKE_PORT))
)
os.environ.setdefault("ENGAGEMENT_OUTBOUND_ALLOWED_NETWORKS", json.dumps(["127.0.0.1/32"]))
os.environ.setdefault("ENGAGEMENT_CONNECTOR_SYNC_INTERVAL_SECONDS", "1")
os.environ.setdefault("ENGAGEMENT_CONNECTOR_PUBLISH_INTERVAL_SECONDS", "1")


@pytest.fixture
def fake() -> Iterator[FakePlatforms]:
    platforms = FakePlatforms()
    platforms.start()
    yield platforms
    platforms.stop()


def settings_env(isolated: devstack.Stack, fake: FakePlatforms, **more: Any) -> dict[str, str]:
    """The ``ENGAGEMENT_*`` environment of a connector against the fakes."""
    env = {
        "ENGAGEMENT_DATABASE_URL": isolated.database_url("engagement"),
        "ENGAGEMENT_AMQP_URL": f"{AMQP_BASE}/{isolated.vhost}",
        "ENGAGEMENT_CONNECTOR_TOKEN_KEYS": json.dumps([TOKEN_KEY]),
        "ENGAGEMENT_CONNECTOR_APPS": json.dumps(fake.apps()),
        "ENGAGEMENT_CONNECTOR_URLS": json.dumps(fake.urls()),
        "ENGAGEMENT_OUTBOUND_ALLOWED_NETWORKS": json.dumps(["127.0.0.1/32"]),
        "ENGAGEMENT_CONNECTOR_PUBLISH_BACKOFF_SECONDS": "0.2",
        "ENGAGEMENT_CONNECTOR_BACKOFF_BASE_SECONDS": "60",
    }
    env.update({f"ENGAGEMENT_{k.upper()}": str(v) for k, v in more.items()})
    return env


def make_settings(isolated: devstack.Stack, fake: FakePlatforms, **more: Any) -> EngagementSettings:
    env = settings_env(isolated, fake)
    fields = {k.removeprefix("ENGAGEMENT_").lower(): v for k, v in env.items()}
    parsed: dict[str, Any] = {
        k: json.loads(v) if v.startswith(("[", "{")) else v for k, v in fields.items()
    }
    return EngagementSettings(**(parsed | more))


@pytest.fixture
def stack_fake() -> Iterator[FakePlatforms]:
    """The fakes the running stack's engagement talks to (on ``STACK_FAKE_PORT``)."""
    platforms = FakePlatforms()
    platforms.start(STACK_FAKE_PORT)
    yield platforms
    platforms.stop()


@pytest.fixture
async def db(isolated: devstack.Stack, fake: FakePlatforms) -> AsyncIterator[Database]:
    database = Database(make_settings(isolated, fake))
    yield database
    await database.dispose()


async def connect(
    db: Database,
    settings: EngagementSettings,
    fake: FakePlatforms,
    *,
    tenant_id: uuid.UUID,
    channel: str,
    user_id: str,
    subreddits: list[str] | None = None,
    query: str | None = None,
) -> ConnectedAccount:
    """Connect an account the way staff do: start, consent on the platform, complete."""
    async with db.session() as session, session.begin():
        started = await service.start_connection(
            session=session,
            settings=settings,
            tenant_id=tenant_id,
            channel=channel,
            redirect_uri="https://console.example.com/connected",
            started_by="staff:test",
            subreddits=subreddits,
            query=query,
        )
    state = parse_qs(urlsplit(started.authorization_url).query)["state"][0]
    code = fake.authorize(started.authorization_url, user_id=user_id)
    async with service.http_client(settings) as http:
        return await service.complete_connection(
            db=db, settings=settings, tenant_id=tenant_id, state=state, code=code, http=http
        )
