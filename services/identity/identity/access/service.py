"""Access operations: staff users and API clients, authenticating them, and issuing tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import (
    ALGORITHM,
    CLIENT_SCOPES,
    CUSTOMER_PERMISSIONS,
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    PrincipalKind,
)
from crm_shared.db import utcnow
from crm_shared.errors import BadUserInput, Conflict, NotFound, Unauthenticated
from identity.access import keys, revocations
from identity.access.models import ApiClient, ApiClientCreate, StaffUser, StaffUserCreate
from identity.tenants.models import Tenant

_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so that a miss takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


@dataclass(frozen=True)
class TokenSettings:
    """What every issued token says and how long it lives."""

    issuer: str
    audience: str
    ttl: timedelta
    customer_ttl: timedelta


@dataclass(frozen=True)
class IssuedToken:
    """An access token as the token endpoint returns it."""

    access_token: str
    expires_in: int
    scope: str


async def create_staff_user(
    *, session: AsyncSession, tenant_id: uuid.UUID, data: StaffUserCreate
) -> StaffUser:
    """A new staff user of the tenant with an argon2-hashed password (e-mail unique)."""
    taken = await session.exec(
        select(StaffUser.id).where(StaffUser.tenant_id == tenant_id, StaffUser.email == data.email)
    )
    if taken.first() is not None:
        raise Conflict("email: a staff user with this e-mail exists", field="input.email")
    user = StaffUser(
        tenant_id=tenant_id,
        email=data.email,
        password_hash=_hasher.hash(data.password),
        role=data.role,
    )
    session.add(user)
    await session.flush()
    return user


def _check_scopes(kind: str, scopes: Iterable[str], *, field: str) -> list[str]:
    allowed = {p.value for p in CLIENT_SCOPES[kind]}
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in allowed]
    if unknown:
        raise BadUserInput(
            f"{field}: a {kind} client cannot hold {', '.join(unknown)}", field=field
        )
    return chosen


async def create_api_client(
    *, session: AsyncSession, tenant_id: uuid.UUID, data: ApiClientCreate
) -> tuple[ApiClient, str]:
    """A new API client and its secret (shown once; only its hash is kept)."""
    scopes = _check_scopes(data.kind, data.scopes, field="input.scopes")
    secret = secrets.token_urlsafe(32)
    client = ApiClient(
        tenant_id=tenant_id,
        name=data.name,
        kind=data.kind,
        scopes=scopes,
        secret_hash=_secret_hash(secret),
    )
    session.add(client)
    await session.flush()
    return client, secret


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def authenticate_staff(
    *, session: AsyncSession, tenant: str, email: str, password: str
) -> StaffUser:
    """The active staff user with these credentials; UNAUTHENTICATED (no detail) otherwise."""
    tenant_row = await _tenant_by_id_or_slug(session, tenant)
    user = None
    if tenant_row is not None:
        user = (
            await session.exec(
                select(StaffUser).where(
                    StaffUser.tenant_id == tenant_row.id, StaffUser.email == email.strip().lower()
                )
            )
        ).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.active:
        raise Unauthenticated("invalid username or password")
    return user


async def authenticate_client(
    *, session: AsyncSession, client_id: str, client_secret: str
) -> ApiClient:
    """The active API client with these credentials; UNAUTHENTICATED otherwise."""
    try:
        client = await session.get(ApiClient, uuid.UUID(client_id))
    except ValueError:
        client = None
    expected = client.secret_hash if client else _secret_hash("")
    if (
        client is None
        or not hmac.compare_digest(expected, _secret_hash(client_secret))
        or not client.active
    ):
        raise Unauthenticated("invalid client credentials")
    return client


async def _tenant_by_id_or_slug(session: AsyncSession, tenant: str) -> Tenant | None:
    try:
        return await session.get(Tenant, uuid.UUID(tenant))
    except ValueError:
        return (await session.exec(select(Tenant).where(Tenant.slug == tenant))).first()


def narrow_scopes(granted: Iterable[str], requested: str | None) -> list[str]:
    """The scopes a token request asks for, which must be among those granted."""
    granted_set = set(granted)
    if requested is None or not requested.strip():
        return sorted(granted_set)
    asked = set(requested.split())
    if not asked <= granted_set:
        raise BadUserInput(
            f"scope: not granted: {', '.join(sorted(asked - granted_set))}", field="scope"
        )
    return sorted(asked)


async def issue_token(
    *,
    session: AsyncSession,
    settings: TokenSettings,
    tenant_id: uuid.UUID,
    kind: PrincipalKind,
    subject: str,
    scopes: Iterable[str],
    role: str | None = None,
    customer_id: uuid.UUID | None = None,
    authorized_party: str | None = None,
) -> IssuedToken:
    """A signed access token for one principal, by the active signing key."""
    key = await keys.active_key(session=session)
    now = utcnow()
    ttl = settings.customer_ttl if kind == "customer" else settings.ttl
    scope = " ".join(sorted(set(scopes)))
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "tid": str(tenant_id),
        "typ": kind,
        "scope": scope,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if role is not None:
        claims["role"] = role
    if customer_id is not None:
        claims["cid"] = str(customer_id)
    if authorized_party is not None:
        # The client a customer token was exchanged by: revoking it revokes these too.
        claims["azp"] = authorized_party
    token = jwt.encode(
        claims, keys.private_key(key.private_pem), algorithm=ALGORITHM, headers={"kid": key.kid}
    )
    return IssuedToken(access_token=token, expires_in=int(ttl.total_seconds()), scope=scope)


async def staff_token(
    *, session: AsyncSession, settings: TokenSettings, user: StaffUser, requested: str | None
) -> IssuedToken:
    """A token for a staff user: their role's permissions (or fewer, on request)."""
    granted = [p.value for p in ROLE_PERMISSIONS[user.role]]
    return await issue_token(
        session=session,
        settings=settings,
        tenant_id=user.tenant_id,
        kind="staff",
        subject=str(user.id),
        scopes=narrow_scopes(granted, requested),
        role=user.role,
    )


async def client_token(
    *, session: AsyncSession, settings: TokenSettings, client: ApiClient, requested: str | None
) -> IssuedToken:
    """A client-credentials token: the client's scopes (or fewer, on request)."""
    return await issue_token(
        session=session,
        settings=settings,
        tenant_id=client.tenant_id,
        kind="client",
        subject=str(client.id),
        scopes=narrow_scopes(client.scopes, requested),
    )


async def customer_token(
    *,
    session: AsyncSession,
    settings: TokenSettings,
    client: ApiClient,
    customer_id: uuid.UUID,
    customer_exists: bool,
) -> IssuedToken:
    """Token exchange: a trusted front end obtains a token that reaches one customer only."""
    if client.kind != "frontend" or Permission.TOKEN_EXCHANGE.value not in client.scopes:
        raise Unauthenticated("this client may not exchange tokens for customers")
    if not customer_exists:
        raise BadUserInput("subject_token: no such customer", field="subject_token")
    return await issue_token(
        session=session,
        settings=settings,
        tenant_id=client.tenant_id,
        kind="customer",
        subject=str(customer_id),
        scopes=[p.value for p in CUSTOMER_PERMISSIONS],
        customer_id=customer_id,
        authorized_party=str(client.id),
    )


def principal_of(user: StaffUser) -> Principal:
    """The principal a staff user acts as (for audit records made outside a request)."""
    return Principal(
        tenant_id=user.tenant_id,
        kind="staff",
        subject=str(user.id),
        permissions=frozenset(p.value for p in ROLE_PERMISSIONS[user.role]),
        role=user.role,
    )


async def list_staff_users(*, session: AsyncSession, tenant_id: uuid.UUID) -> list[StaffUser]:
    """The tenant's staff users, by e-mail."""
    rows = await session.exec(
        select(StaffUser).where(StaffUser.tenant_id == tenant_id).order_by(StaffUser.email)
    )
    return list(rows)


async def list_api_clients(*, session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiClient]:
    """The tenant's API clients, by name."""
    rows = await session.exec(
        select(ApiClient).where(ApiClient.tenant_id == tenant_id).order_by(ApiClient.name)
    )
    return list(rows)


async def update_staff_user(
    *,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str | None,
    active: bool | None,
) -> tuple[StaffUser, dict[str, object]]:
    """Change a staff user's role and/or active flag; the user and what changed."""
    user = await session.get(StaffUser, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound("id: no such staff user", field="id")
    changed: dict[str, object] = {}
    revoke = False
    if role is not None:
        if role not in ROLE_PERMISSIONS:
            raise BadUserInput(f"role: must be one of {', '.join(ROLE_PERMISSIONS)}", field="role")
        changed["role"] = role
        revoke = role != user.role
        user.role = role
    if active is not None:
        changed["active"] = active
        revoke = revoke or not active
        user.active = active
    session.add(user)
    await session.flush()
    if revoke:
        # Tokens carry the role's scopes: the old ones stop working within seconds.
        await revocations.revoke_tokens(
            session,
            tenant_id=tenant_id,
            kind="staff",
            subject=str(user.id),
            reason="deactivated" if active is False else "role changed",
        )
    return user, changed


async def revoke_api_client(
    *, session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> ApiClient:
    """Deactivate an API client (its tokens expire on their own; it gets no new ones). The
    row is locked, so what is being given to the client meanwhile waits or is refused; a
    partner client's subscriptions and webhooks go with it (identity.partners.service)."""
    client = await session.get(ApiClient, client_id, with_for_update=True)
    if client is None or client.tenant_id != tenant_id:
        raise NotFound("id: no such API client", field="id")
    client.active = False
    if client.revoked_at is None:
        client.revoked_at = utcnow()
    session.add(client)
    await session.flush()
    # Its tokens, and those of customers it obtained by token exchange (``azp``), end now.
    await revocations.revoke_tokens(
        session, tenant_id=tenant_id, kind="client", subject=str(client.id), reason="revoked"
    )
    return client
