"""Engagement's tests: the running stack, a tenant per test, payloads shaped as documented."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_shared import devstack
from crm_shared.db import Database
from tests.conftest import settings_for
from tests.e2e.conftest import make_tenant
from tests.support.auth import staff_token

# The Meta settings of the engagement service the session stack starts (it inherits the
# environment); set at collection, before any service starts.
META_APP_SECRET = "test-meta-app-secret"
META_VERIFY_TOKEN = "test-meta-verify-token"
os.environ.setdefault("ENGAGEMENT_META_APP_SECRET", META_APP_SECRET)
os.environ.setdefault("ENGAGEMENT_META_VERIFY_TOKEN", META_VERIFY_TOKEN)

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> Any:
    """A documented example payload, decoded."""
    return json.loads((PAYLOADS / name).read_text())


def raw_payload(name: str) -> bytes:
    """A documented example payload as bytes (for NDJSON and signatures)."""
    return (PAYLOADS / name).read_bytes()


def meta_signature(body: bytes, secret: str = META_APP_SECRET) -> str:
    """``X-Hub-Signature-256`` as Meta computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def tenant(stack: devstack.Stack) -> str:
    """A fresh tenant, so that each test's items are new to it."""
    return make_tenant(stack)


@pytest.fixture
async def writer(stack: devstack.Stack, tenant: str) -> str:
    """An agent's token (interactions:write) in the tenant."""
    return await staff_token(stack, tenant, "agent")


async def post(
    stack: devstack.Stack,
    path: str,
    *,
    token: str | None,
    json_body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST to engagement's HTTP API."""
    all_headers = dict(headers or {})
    if token:
        all_headers["authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=30) as client:
        if json_body is not None:
            return await client.post(
                stack.url("engagement", path), json=json_body, headers=all_headers
            )
        return await client.post(
            stack.url("engagement", path), content=content, headers=all_headers
        )


@pytest.fixture
async def engagement_db(stack: devstack.Stack) -> AsyncIterator[Database]:
    """Engagement's database in the running stack, as engagement's role (to read the outbox)."""
    db = Database(settings_for(stack, "engagement"))
    yield db
    await db.dispose()


async def outbox(db: Database, tenant: str, event_type: str) -> list[dict[str, Any]]:
    """The data of the events of ``event_type`` engagement recorded for the tenant."""
    from sqlalchemy import text

    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT envelope FROM engagement.outbox WHERE type = :type "
                "AND envelope->>'tenantid' = :tenant ORDER BY seq"
            ),
            {"type": event_type, "tenant": tenant},
        )
        return [dict(row[0]["data"]) for row in rows]


def new_id() -> str:
    return uuid.uuid4().hex[:12]
