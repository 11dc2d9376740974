"""HTTP endpoints of access: the OAuth2 token endpoint and the JWKS.

``POST /oauth/token`` (``application/x-www-form-urlencoded``, RFC 6749) takes:

- ``grant_type=client_credentials`` with the client's id and secret (HTTP Basic or the
  ``client_id``/``client_secret`` parameters) and an optional ``scope``;
- ``grant_type=password`` with ``username`` (e-mail), ``password`` and ``tenant`` (slug or id):
  the staff login;
- ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` (RFC 8693) by a front-end
  client holding ``token:exchange``, with ``subject_token`` = a customer id and
  ``subject_token_type`` = ``urn:social-crm:params:token-type:customer-id``: a token that
  reaches that customer's own data only.

Errors are RFC 6749 §5.2 bodies (``error``, ``error_description``), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from typing import Annotated
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import select

from crm_shared.db import Database
from crm_shared.errors import BadUserInput, Unauthenticated
from identity.access import keys, revocations, service, throttle
from identity.access.models import ApiClient
from identity.access.service import IssuedToken, TokenSettings
from identity.customers.models import Customer

router = APIRouter()

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CUSTOMER_ID_TOKEN_TYPE = "urn:social-crm:params:token-type:customer-id"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _token_settings(request: Request) -> TokenSettings:
    settings: TokenSettings = request.app.state.token_settings
    return settings


DatabaseDep = Annotated[Database, Depends(_db)]
TokenSettingsDep = Annotated[TokenSettings, Depends(_token_settings)]


class OAuthError(Exception):
    """An RFC 6749 error response."""

    def __init__(
        self, error: str, description: str, status: int = 400, retry_after: float | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        headers = dict(_NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="social-crm"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(
            (await request.body()).decode(), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the body is not UTF-8") from None
    repeated = [name for name, values in parsed.items() if len(values) > 1]
    if repeated:
        raise OAuthError("invalid_request", f"parameter repeated: {', '.join(repeated)}")
    return {name: values[0] for name, values in parsed.items()}


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
        client_id, sep, secret = raw.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401)
        return unquote_plus(client_id), unquote_plus(secret)
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    raise OAuthError("invalid_client", "client authentication is required", 401)


async def _client(db: Database, request: Request, form: dict[str, str]) -> ApiClient:
    client_id, secret = _client_credentials(request, form)
    async with db.session() as session:
        try:
            return await service.authenticate_client(
                session=session, client_id=client_id, client_secret=secret
            )
        except Unauthenticated as exc:
            raise OAuthError("invalid_client", exc.message, 401) from None


def _required(form: dict[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not form.get(n)]
    if missing:
        raise OAuthError("invalid_request", f"missing parameter: {', '.join(missing)}")
    return [form[n] for n in names]


async def _grant(
    request: Request, db: Database, settings: TokenSettings, form: dict[str, str]
) -> IssuedToken:
    grant_type = form.get("grant_type")
    if grant_type == "client_credentials":
        client = await _client(db, request, form)
        async with db.session() as session, session.begin():
            return await service.client_token(
                session=session, settings=settings, client=client, requested=form.get("scope")
            )
    if grant_type == "password":
        return await _staff_login(request, db, settings, form)
    if grant_type == TOKEN_EXCHANGE:
        client = await _client(db, request, form)
        subject, subject_type = _required(form, "subject_token", "subject_token_type")
        if subject_type != CUSTOMER_ID_TOKEN_TYPE:
            raise OAuthError(
                "invalid_request", f"subject_token_type must be {CUSTOMER_ID_TOKEN_TYPE}"
            )
        try:
            customer_id = uuid.UUID(subject)
        except ValueError:
            raise OAuthError("invalid_grant", "subject_token is not a customer id") from None
        async with db.session() as session, session.begin():
            found = await session.exec(
                select(Customer.id).where(
                    Customer.id == customer_id, Customer.tenant_id == client.tenant_id
                )
            )
            try:
                return await service.customer_token(
                    session=session,
                    settings=settings,
                    client=client,
                    customer_id=customer_id,
                    customer_exists=found.first() is not None,
                )
            except Unauthenticated as exc:
                raise OAuthError("unauthorized_client", exc.message) from None
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


async def _staff_login(
    request: Request, db: Database, settings: TokenSettings, form: dict[str, str]
) -> IssuedToken:
    """The password grant, throttled per account and per address (identity.access.throttle):
    a locked key is refused with 429 and Retry-After before the password is looked at."""
    username, password, tenant = _required(form, "username", "password", "tenant")
    limits: throttle.ThrottleSettings = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    account = throttle.account_key(tenant, username)
    async with db.session() as session:
        wait = await throttle.locked_for(session, [account, throttle.address_key(address)])
    if wait:
        raise OAuthError(
            "slow_down",
            f"too many failed logins; try again in {math.ceil(wait)} s",
            status=429,
            retry_after=wait,
        )
    try:
        async with db.session() as session, session.begin():
            user = await service.authenticate_staff(
                session=session, tenant=tenant, email=username, password=password
            )
            await throttle.clear_account(session, account)
            return await service.staff_token(
                session=session, settings=settings, user=user, requested=form.get("scope")
            )
    except Unauthenticated as exc:
        async with db.session() as session, session.begin():
            await throttle.record_failure(
                session, settings=limits, tenant=tenant, email=username, address=address
            )
        raise OAuthError("invalid_grant", exc.message) from None


@router.post("/oauth/token", tags=["access"])
async def token(request: Request, db: DatabaseDep, settings: TokenSettingsDep) -> JSONResponse:
    """Issue an access token (client credentials, staff login or customer token exchange)."""
    try:
        form = await _form(request)
        issued = await _grant(request, db, settings, form)
    except OAuthError as exc:
        return exc.response()
    except BadUserInput as exc:
        error = "invalid_scope" if exc.field == "scope" else "invalid_grant"
        return OAuthError(error, exc.message).response()
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    if form.get("grant_type") == TOKEN_EXCHANGE:
        body["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
    return JSONResponse(body, headers=_NO_STORE)


@router.get("/.well-known/jwks.json", tags=["access"])
async def jwks(db: DatabaseDep) -> JSONResponse:
    """The public keys that verify identity's tokens (current and not yet expired)."""
    async with db.session() as session, session.begin():
        await keys.active_key(session=session)
        body = await keys.jwks(session=session)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


def revocation_horizon(settings: TokenSettings) -> float:
    """How far back a revocation can still concern a live token (the longest lifetime)."""
    return max(settings.ttl, settings.customer_ttl).total_seconds() + 60


@router.get("/auth/revocations", tags=["access"])
async def token_revocations(db: DatabaseDep, settings: TokenSettingsDep) -> JSONResponse:
    """Principals whose tokens issued before ``nbf`` are refused (deactivated staff users,
    role changes, revoked clients), for the services that verify tokens; internal, like the
    subgraphs (the gateway does not serve it)."""
    async with db.session() as session:
        body = await revocations.recent_revocations(
            session, horizon_seconds=revocation_horizon(settings)
        )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
