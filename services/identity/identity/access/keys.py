"""Signing keys: ES256 key pairs with a ``kid``, published as a JWKS, rotated without a gap.

A key signs until it is retired by a rotation; it stays in the JWKS until every token it
signed has expired (``expires_at`` = retirement + the longest token lifetime + leeway).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_shared.auth import ALGORITHM
from crm_shared.db import utcnow
from identity.access.models import SigningKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_signing_key() -> SigningKey:
    """A fresh P-256 key pair; its ``kid`` is the RFC 7638 thumbprint of the public key."""
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    kid = _b64url(hashlib.sha256(json.dumps(jwk, separators=(",", ":")).encode()).digest())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningKey(
        kid=kid, private_pem=pem, public_jwk={**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}
    )


@lru_cache(maxsize=16)
def private_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """The loaded private key of a PEM (parsed once per process)."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


async def _lock_keys(session: AsyncSession) -> None:
    # One rotation or first key at a time, across processes.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('identity.signing_keys'))"))


async def active_key(*, session: AsyncSession) -> SigningKey:
    """The key that signs now, made on first use."""
    query = select(SigningKey).where(col(SigningKey.retired_at).is_(None))
    query = query.order_by(col(SigningKey.created_at).desc()).limit(1)
    key = (await session.exec(query)).first()
    if key is not None:
        return key
    await _lock_keys(session)
    key = (await session.exec(query)).first()
    if key is None:
        key = new_signing_key()
        session.add(key)
        await session.flush()
    return key


async def rotate_signing_key(*, session: AsyncSession, retain: timedelta) -> SigningKey:
    """Sign with a new key from now on; old keys verify for ``retain`` more (their tokens' life)."""
    await _lock_keys(session)
    now = utcnow()
    current = await session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None)))
    for key in current:
        key.retired_at = now
        key.expires_at = now + retain
        session.add(key)
    fresh = new_signing_key()
    session.add(fresh)
    await session.flush()
    return fresh


async def published_keys(*, session: AsyncSession, now: datetime | None = None) -> list[SigningKey]:
    """The keys whose tokens may still be valid, newest first."""
    now = now or utcnow()
    rows = await session.exec(
        select(SigningKey)
        .where(or_(col(SigningKey.expires_at).is_(None), col(SigningKey.expires_at) > now))
        .order_by(col(SigningKey.created_at).desc())
    )
    return list(rows)


async def jwks(*, session: AsyncSession) -> dict[str, Any]:
    """The JSON Web Key Set of every published key (public parts only)."""
    return {"keys": [key.public_jwk for key in await published_keys(session=session)]}
