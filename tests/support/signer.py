"""A signing key of the suite's own, published as a JWKS over HTTP, for tests that run a
gateway without identity (the federation runtime's tests)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_shared.auth import ALGORITHM, DEFAULT_AUDIENCE, DEFAULT_ISSUER


class TestSigner:
    """Issues ES256 tokens as identity would, under a key id of its own."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        # Where the JWKS is served, once a test server serves ``app()``.
        self.jwks_url = ""
        # What ``/auth/revocations`` lists, as identity lists it (tid, typ, sub, nbf).
        self.revocations: list[dict[str, Any]] = []

    def jwks(self) -> dict[str, Any]:
        """The public half, as a JWK Set."""
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}]}

    def token(self, **overrides: Any) -> str:
        """A valid staff token of a made-up tenant, with ``overrides`` applied to its claims."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": DEFAULT_ISSUER,
            "aud": DEFAULT_AUDIENCE,
            "sub": str(uuid.uuid4()),
            "tid": str(uuid.uuid4()),
            "typ": "staff",
            "role": "admin",
            "scope": "",
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def revoke(self, token: str) -> None:
        """Lists the token's principal as identity would after deactivating it."""
        claims = jwt.decode(token, options={"verify_signature": False})
        self.revocations.append(
            {"tid": claims["tid"], "typ": claims["typ"], "sub": claims["sub"], "nbf": time.time()}
        )

    def app(self) -> Starlette:
        """Serves the JWKS at ``/.well-known/jwks.json`` and the revocation list beside it."""

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(self.jwks())

        async def revocations(_: Request) -> JSONResponse:
            return JSONResponse({"revocations": self.revocations})

        return Starlette(
            routes=[
                Route("/.well-known/jwks.json", jwks),
                Route("/auth/revocations", revocations),
            ]
        )
