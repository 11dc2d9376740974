"""Tokens for tests, obtained the way callers obtain them: from identity's token endpoint.

Staff users and API clients are created through identity's own service functions (as
identity's database role); the token itself always comes from ``POST /oauth/token`` of the
running identity service, so every test that uses one also exercises the real flow.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterable

import httpx

from crm_shared import devstack
from crm_shared.db import Database
from identity.access import service as access
from identity.access.models import ApiClientCreate, StaffUserCreate
from identity.settings import IdentitySettings

_cache: dict[tuple[str, ...], tuple[str, float]] = {}


def _identity_db(stack: devstack.Stack) -> Database:
    return Database(IdentitySettings(database_url=stack.database_url("identity")))


async def _token_request(stack: devstack.Stack, form: dict[str, str]) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(stack.url("identity", "/oauth/token"), data=form)
    if response.status_code != 200:
        raise AssertionError(f"token request refused: {response.status_code} {response.text}")
    token: str = response.json()["access_token"]
    return token


def _cached(key: tuple[str, ...]) -> str | None:
    found = _cache.get(key)
    if found is not None and found[1] > time.monotonic() + 60:
        return found[0]
    return None


def _remember(key: tuple[str, ...], token: str, lifetime: float = 900) -> str:
    _cache[key] = (token, time.monotonic() + lifetime)
    return token


async def create_staff_user(
    stack: devstack.Stack, tenant_id: str | uuid.UUID, role: str
) -> tuple[str, str]:
    """A new staff user of the tenant with ``role``; their e-mail and password."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@staff.example.com"
    password = secrets.token_urlsafe(16)
    db = _identity_db(stack)
    try:
        async with db.session() as session, session.begin():
            await access.create_staff_user(
                session=session,
                tenant_id=uuid.UUID(str(tenant_id)),
                data=StaffUserCreate(email=email, password=password, role=role),
            )
    finally:
        await db.dispose()
    return email, password


async def create_client(
    stack: devstack.Stack, tenant_id: str | uuid.UUID, *, kind: str, scopes: Iterable[str]
) -> tuple[str, str]:
    """A new API client of the tenant; its client_id and secret."""
    db = _identity_db(stack)
    try:
        async with db.session() as session, session.begin():
            client, secret = await access.create_api_client(
                session=session,
                tenant_id=uuid.UUID(str(tenant_id)),
                data=ApiClientCreate(name=f"test-{kind}", kind=kind, scopes=list(scopes)),
            )
    finally:
        await db.dispose()
    return str(client.id), secret


async def staff_token(
    stack: devstack.Stack, tenant_id: str | uuid.UUID, role: str = "admin"
) -> str:
    """A staff token of ``role`` in the tenant (staff login: grant_type=password)."""
    key = ("staff", stack.database, str(tenant_id), role)
    if (token := _cached(key)) is not None:
        return token
    email, password = await create_staff_user(stack, tenant_id, role)
    token = await _token_request(
        stack,
        {
            "grant_type": "password",
            "username": email,
            "password": password,
            "tenant": str(tenant_id),
        },
    )
    return _remember(key, token)


async def client_token(
    stack: devstack.Stack,
    tenant_id: str | uuid.UUID,
    scopes: Iterable[str],
    *,
    kind: str = "frontend",
) -> str:
    """A client-credentials token holding ``scopes``."""
    chosen = sorted(set(scopes))
    key = ("client", stack.database, str(tenant_id), kind, *chosen)
    if (token := _cached(key)) is not None:
        return token
    client_id, secret = await create_client(stack, tenant_id, kind=kind, scopes=chosen)
    token = await _token_request(
        stack,
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    return _remember(key, token)


async def customer_token(
    stack: devstack.Stack, tenant_id: str | uuid.UUID, customer_id: str | uuid.UUID
) -> str:
    """A customer-scoped token (token exchange by a trusted front end) for one customer."""
    key = ("customer", stack.database, str(tenant_id), str(customer_id))
    if (token := _cached(key)) is not None:
        return token
    client_id, secret = await create_client(
        stack, tenant_id, kind="frontend", scopes=["token:exchange"]
    )
    token = await _token_request(
        stack,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": client_id,
            "client_secret": secret,
            "subject_token": str(customer_id),
            "subject_token_type": "urn:social-crm:params:token-type:customer-id",
        },
    )
    return _remember(key, token)
