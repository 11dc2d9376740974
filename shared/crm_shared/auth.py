"""Who the caller is and what they may do: verified JWTs, principals, the permission table.

Identity issues short-lived JWTs signed with ES256 keys that carry a ``kid`` and are published
as a JWKS. The gateway verifies each request's bearer token and forwards it unchanged; every
subgraph verifies it again (a subgraph reached directly is not an open door) and each resolver
asks for the permission it needs with :func:`authorize`.

The table below is the one source of truth for roles and scopes; ``services/identity/README.md``
documents it for people.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import httpx
import jwt
from jwt import PyJWK

from crm_shared.auth_revocation import RevocationKey, RevocationList, revocation_keys
from crm_shared.errors import Forbidden, Unauthenticated

ALGORITHM = "ES256"
DEFAULT_ISSUER = "https://identity.social-crm.local"
DEFAULT_AUDIENCE = "social-crm"


class Permission(StrEnum):
    """A scope: what a token allows. Staff get them through roles, API clients directly."""

    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CONSENT_READ = "consent:read"
    CONSENT_WRITE = "consent:write"
    PRIVACY_MANAGE = "privacy:manage"
    INTERACTIONS_READ = "interactions:read"
    INTERACTIONS_WRITE = "interactions:write"
    LISTENING_READ = "listening:read"
    LISTENING_MANAGE = "listening:manage"
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    COMMUNITY_READ = "community:read"
    COMMUNITY_MANAGE = "community:manage"
    COMMUNITY_PARTICIPATE = "community:participate"
    REWARDS_READ = "rewards:read"
    REWARDS_MANAGE = "rewards:manage"
    REWARDS_REDEEM = "rewards:redeem"
    POINTS_ADJUST = "points:adjust"
    FRAUD_REVIEW = "fraud:review"
    PURCHASES_WRITE = "purchases:write"
    AUDIT_READ = "audit:read"
    ACCESS_MANAGE = "access:manage"
    PARTNERS_MANAGE = "partners:manage"
    TOKEN_EXCHANGE = "token:exchange"


P = Permission
Role = Literal["admin", "marketer", "agent", "analyst"]
ROLES: tuple[Role, ...] = ("admin", "marketer", "agent", "analyst")

# What each staff role may do (admin: everything but acting as a client).
ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    "admin": frozenset(P) - {P.TOKEN_EXCHANGE},
    "marketer": frozenset(
        {
            P.CUSTOMERS_READ,
            P.CONSENT_READ,
            P.INTERACTIONS_READ,
            P.LISTENING_READ,
            P.LISTENING_MANAGE,
            P.CASES_READ,
            P.COMMUNITY_READ,
            P.COMMUNITY_MANAGE,
            P.REWARDS_READ,
            P.REWARDS_MANAGE,
        }
    ),
    "agent": frozenset(
        {
            P.CUSTOMERS_READ,
            P.CUSTOMERS_WRITE,
            P.CONSENT_READ,
            P.CONSENT_WRITE,
            P.INTERACTIONS_READ,
            P.INTERACTIONS_WRITE,
            P.CASES_READ,
            P.CASES_WRITE,
            P.COMMUNITY_READ,
            P.REWARDS_READ,
            P.POINTS_ADJUST,
        }
    ),
    "analyst": frozenset(
        {
            P.CUSTOMERS_READ,
            P.CONSENT_READ,
            P.INTERACTIONS_READ,
            P.LISTENING_READ,
            P.CASES_READ,
            P.COMMUNITY_READ,
            P.REWARDS_READ,
        }
    ),
}

ClientKind = Literal["frontend", "partner"]
# Scopes an API client of each kind may be granted; what it gets is chosen by an admin.
CLIENT_SCOPES: Mapping[str, frozenset[Permission]] = {
    "frontend": frozenset(P)
    - {P.ACCESS_MANAGE, P.PARTNERS_MANAGE, P.AUDIT_READ, P.PRIVACY_MANAGE, P.PURCHASES_WRITE},
    "partner": frozenset(
        {
            P.CUSTOMERS_READ,
            P.CUSTOMERS_WRITE,
            P.CONSENT_READ,
            P.INTERACTIONS_READ,
            P.INTERACTIONS_WRITE,
            P.REWARDS_READ,
            # A shop redeems coupons (and points) at its checkout.
            P.REWARDS_REDEEM,
            P.PURCHASES_WRITE,
        }
    ),
}

# A customer-scoped token (token exchange by a trusted front end) reaches only the customer's
# own data, and only for these.
CUSTOMER_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        P.CUSTOMERS_READ,
        P.CONSENT_READ,
        P.CONSENT_WRITE,
        P.INTERACTIONS_READ,
        P.CASES_READ,
        P.COMMUNITY_READ,
        P.COMMUNITY_PARTICIPATE,
        P.REWARDS_READ,
        P.REWARDS_REDEEM,
    }
)

PrincipalKind = Literal["staff", "client", "customer"]


@dataclass(frozen=True)
class Principal:
    """A verified caller: their tenant, who they are, and what they may do."""

    tenant_id: uuid.UUID
    kind: PrincipalKind
    subject: str
    permissions: frozenset[str]
    role: str | None = None
    customer_id: uuid.UUID | None = None
    token_id: str | None = None

    @property
    def actor(self) -> str:
        """How audit records name this caller: ``staff:<id>``, ``client:<id>``..."""
        return f"{self.kind}:{self.subject}"

    def can(self, permission: Permission) -> bool:
        """Whether the token carries ``permission``."""
        return permission.value in self.permissions

    def check(self, permission: Permission, *, customer_id: uuid.UUID | None = None) -> None:
        """FORBIDDEN unless allowed; a customer token only ever reaches its own customer."""
        if not self.can(permission):
            raise Forbidden(f"this token lacks the {permission.value} scope")
        if self.kind == "customer" and customer_id != self.customer_id:
            raise Forbidden("a customer token reaches only its own customer")

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """The principal a verified token describes."""
        try:
            kind = claims["typ"]
            if kind not in ("staff", "client", "customer"):
                raise ValueError(kind)
            customer = claims.get("cid")
            return cls(
                tenant_id=uuid.UUID(str(claims["tid"])),
                kind=kind,
                subject=str(claims["sub"]),
                permissions=frozenset(str(claims.get("scope", "")).split()),
                role=claims.get("role"),
                customer_id=uuid.UUID(str(customer)) if customer else None,
                token_id=claims.get("jti"),
            )
        except (KeyError, ValueError, TypeError):
            raise Unauthenticated("the token's claims are incomplete") from None
        # A customer token without its customer would reach nobody's data but look valid.


JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token whose signature and claims were checked: whom it stands for, and when."""

    principal: Principal
    expires: float
    issued_at: float
    keys: tuple[RevocationKey, ...]


def http_jwks(url: str, *, timeout: float = 5.0) -> JwksFetcher:
    """A fetcher of the JWKS that identity serves at ``url``."""

    async def fetch() -> Mapping[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            body: Mapping[str, Any] = response.json()
            return body

    return fetch


class TokenVerifier:
    """Verifies bearer tokens against identity's JWKS (cached, refreshed on an unknown ``kid``).

    Only ES256 is accepted, so ``alg=none`` and HMAC-with-the-public-key tokens are refused
    before any signature check; ``exp``, ``iat``, ``iss``, ``aud`` and ``kid`` are required.
    """

    def __init__(
        self,
        fetch_jwks: JwksFetcher,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        min_refresh_seconds: float = 5.0,
        leeway_seconds: float = 5.0,
        cache_size: int = 10_000,
        revocations: RevocationList | None = None,
    ) -> None:
        self._fetch = fetch_jwks
        # Principals whose earlier tokens are refused (deactivated, revoked): checked on every
        # request, cached tokens included.
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = 0.0
        self._min_refresh = min_refresh_seconds
        self._leeway = leeway_seconds
        self._lock = asyncio.Lock()
        # Tokens already verified, with their expiry: the gateway and every subgraph see the
        # same token on each request, and an ES256 check is the costliest step of a request.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_size = cache_size

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._min_refresh and self._keys:
                return
            try:
                jwks = await self._fetch()
            except Exception:
                # Keep the keys we have; the caller fails only if its kid is unknown.
                self._fetched_at = time.monotonic()
                return
            keys: dict[str, PyJWK] = {}
            for data in jwks.get("keys", []):
                if data.get("kid") and data.get("alg", ALGORITHM) == ALGORITHM:
                    keys[data["kid"]] = PyJWK(data, algorithm=ALGORITHM)
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> PyJWK:
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("the token was signed with an unknown key")
        return key

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; UNAUTHENTICATED with the reason otherwise."""
        verified = self._verified.get(token)
        if verified is not None and time.time() >= verified.expires + self._leeway:
            del self._verified[token]
            verified = None
        if verified is None:
            verified = await self._verify(token)
            self._verified[token] = verified
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        revocations = self.revocations
        if revocations is not None:
            await revocations.fresh()
            if revocations.revoked(verified.keys, verified.issued_at):
                raise Unauthenticated("the token was revoked")
        return verified.principal

    async def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"the token's algorithm must be {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token has no key id (kid)")
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "tid", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token was not issued by identity") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is invalid: {exc}") from None
        return _Verified(
            Principal.from_claims(claims),
            float(claims["exp"]),
            float(claims["iat"]),
            revocation_keys(claims),
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header; None when there is no header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()
