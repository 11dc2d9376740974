"""Tokens: what identity issues, what every service refuses, and rotation without a gap."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crm_shared import devstack
from crm_shared.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER, ROLE_PERMISSIONS
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import client_token, create_client, create_staff_user, staff_token
from tests.support.waiting import eventually

VIEWER = "{ viewer { tenantId kind subject role scopes customerId } }"
# A field each subgraph adds to Customer, asked for through _entities as the gateway would.
ENTITY_FIELD = {
    service: 'query($id: ID!) { _entities(representations: [{__typename: "Customer", id: $id}])'
    f" {{ ... on Customer {{ {field} }} }} }}"
    for service, field in (("engagement", "interactionCount"), ("rewards", "rewards { balance }"))
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def _claims(tenant_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "sub": str(uuid.uuid4()),
        "tid": tenant_id,
        "typ": "staff",
        "role": "admin",
        "scope": " ".join(p.value for p in ROLE_PERMISSIONS["admin"]),
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return claims


async def _signing_key(stack: devstack.Stack) -> tuple[str, str, dict[str, Any]]:
    """Identity's current signing key (kid, private PEM, public JWK), read as identity's role."""
    conn = await asyncpg.connect(stack.database_url("identity"))
    try:
        row = await conn.fetchrow(
            "SELECT kid, private_pem, public_jwk FROM identity.signing_keys "
            "WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert row is not None
    return row["kid"], row["private_pem"], json.loads(row["public_jwk"])


async def _viewer(stack: devstack.Stack, token: str, service: str) -> dict[str, Any]:
    result = await devstack.graphql(stack, VIEWER, token=token, service=service)
    return result


def _code(result: dict[str, Any]) -> str:
    return str(result["errors"][0]["extensions"]["code"])


async def test_a_staff_login_gives_a_token_of_the_role_that_names_the_tenant(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    token = await staff_token(stack, tenant_id, role="analyst")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"]
    result = await _viewer(stack, token, "gateway")
    viewer = result["data"]["viewer"]
    assert viewer["tenantId"] == tenant_id
    assert viewer["kind"] == "staff" and viewer["role"] == "analyst"
    assert set(viewer["scopes"]) == {p.value for p in ROLE_PERMISSIONS["analyst"]}


async def test_the_jwks_publishes_the_signing_key_and_verifies_issued_tokens(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    token = await client_token(stack, tenant_id, ["customers:read"])
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(stack.url("identity", "/.well-known/jwks.json"))).json()
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [k for k in jwks["keys"] if k["kid"] == kid]
    assert "d" not in key, "the JWKS must not leak the private part"
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["ES256"],
        audience=DEFAULT_AUDIENCE,
        issuer=DEFAULT_ISSUER,
    )
    assert claims["typ"] == "client" and claims["scope"] == "customers:read"
    assert claims["exp"] - claims["iat"] == 900


@pytest.mark.parametrize("service", ["gateway", *devstack.SUBGRAPHS])
@pytest.mark.parametrize(
    "forgery",
    [
        "alg_none",
        "hs256_with_public_key",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "unknown_kid",
    ],
)
async def test_forged_or_stale_tokens_are_refused_everywhere(
    stack: devstack.Stack, service: str, forgery: str
) -> None:
    tenant_id = make_tenant(stack)
    kid, private_pem, public_jwk = await _signing_key(stack)
    claims = _claims(tenant_id)
    if forgery == "alg_none":
        token = _unsigned({"alg": "none", "typ": "JWT", "kid": kid}, claims) + "."
    elif forgery == "hs256_with_public_key":
        public_pem = jwt.PyJWK(public_jwk).key.public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        token = signing_input + "." + _b64(signature)
    elif forgery == "unknown_kid":
        stranger = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "not-ours"})
    else:
        by_forgery: dict[str, dict[str, Any]] = {
            "expired": {"iat": int(time.time()) - 3600, "exp": int(time.time()) - 1800},
            "wrong_audience": {"aud": "someone-else"},
            "wrong_issuer": {"iss": "https://evil.example"},
        }
        overrides = by_forgery[forgery]
        token = jwt.encode(
            {**claims, **overrides}, private_pem, algorithm="ES256", headers={"kid": kid}
        )
    if service in ("gateway", "identity"):
        result = await _viewer(stack, token, service)
    else:
        # Straight to the subgraph, past the gateway: its own check must refuse the token.
        result = await devstack.graphql(
            stack, ENTITY_FIELD[service], {"id": str(uuid.uuid4())}, token=token, service=service
        )
    assert _code(result) == "UNAUTHENTICATED", result


async def test_a_token_signed_with_the_real_key_but_no_tenant_is_refused(
    stack: devstack.Stack,
) -> None:
    kid, private_pem, _ = await _signing_key(stack)
    claims = _claims(str(uuid.uuid4()))
    del claims["tid"]
    token = jwt.encode(claims, private_pem, algorithm="ES256", headers={"kid": kid})
    assert _code(await _viewer(stack, token, "identity")) == "UNAUTHENTICATED"


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    old = await staff_token(stack, tenant_id, role="admin")
    old_kid = jwt.get_unverified_header(old)["kid"]
    rotated = await devstack.graphql(
        stack, "mutation { rotateSigningKey { kid } }", token=old, service="gateway"
    )
    new_kid = rotated["data"]["rotateSigningKey"]["kid"]
    assert new_kid != old_kid
    email, password = await create_staff_user(stack, tenant_id, "agent")
    async with httpx.AsyncClient() as client:
        issued = await client.post(
            stack.url("identity", "/oauth/token"),
            data={
                "grant_type": "password",
                "username": email,
                "password": password,
                "tenant": tenant_id,
            },
        )
        jwks = (await client.get(stack.url("identity", "/.well-known/jwks.json"))).json()
    new = issued.json()["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}
    # Every service accepts both: the new kid makes the others refresh their cached JWKS.
    for service in ("gateway", "identity"):
        for token in (old, new):
            result = await _viewer(stack, token, service)
            assert "errors" not in result, (service, result)
    for token in (old, new):
        result = await devstack.graphql(
            stack, "{ customers(first: 1) { edges { cursor } } }", token=token
        )
        assert "errors" not in result, result


async def test_token_endpoint_errors_follow_oauth2(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    client_id, secret = await create_client(
        stack, tenant_id, kind="partner", scopes=["customers:read"]
    )
    url = stack.url("identity", "/oauth/token")
    async with httpx.AsyncClient() as client:
        wrong_secret = await client.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": "no",
            },
        )
        unsupported = await client.post(url, data={"grant_type": "implicit"})
        too_wide = await client.post(
            url,
            data={"grant_type": "client_credentials", "scope": "customers:read customers:write"},
            auth=(client_id, secret),
        )
        wrong_password = await client.post(
            url,
            data={
                "grant_type": "password",
                "username": "x@y.z",
                "password": "nope",
                "tenant": tenant_id,
            },
        )
        exchange_without_right = await client.post(
            url,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": str(uuid.uuid4()),
                "subject_token_type": "urn:social-crm:params:token-type:customer-id",
            },
            auth=(client_id, secret),
        )
        not_a_form = await client.post(url, json={"grant_type": "client_credentials"})
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] in ("unsupported_grant_type", "invalid_request")
    assert (too_wide.status_code, too_wide.json()["error"]) == (400, "invalid_scope")
    assert (wrong_password.status_code, wrong_password.json()["error"]) == (400, "invalid_grant")
    assert exchange_without_right.json()["error"] == "unauthorized_client"
    assert (not_a_form.status_code, not_a_form.json()["error"]) == (400, "invalid_request")
    for response in (wrong_secret, too_wide, wrong_password):
        assert response.headers["cache-control"] == "no-store"


async def test_a_customer_token_reads_only_its_own_customer(stack: devstack.Stack) -> None:
    from tests.support.auth import customer_token

    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    ids = []
    for name in ("Own", "Other"):
        result = await devstack.graphql(stack, REGISTER, {"input": {"name": name}}, token=admin)
        ids.append(result["data"]["registerCustomer"]["id"])
    own, other = ids
    token = await customer_token(stack, tenant_id, own)
    viewer = (await _viewer(stack, token, "gateway"))["data"]["viewer"]
    assert viewer["kind"] == "customer" and viewer["customerId"] == own
    query = "query($id: ID!) { customer(id: $id) { id } }"
    mine = await devstack.graphql(stack, query, {"id": own}, token=token)
    assert mine["data"]["customer"] == {"id": own}, mine
    theirs = await devstack.graphql(stack, query, {"id": other}, token=token)
    assert _code(theirs) == "FORBIDDEN"
    listing = await devstack.graphql(
        stack, "{ customers(first: 5) { edges { cursor } } }", token=token
    )
    assert _code(listing) == "FORBIDDEN"


async def test_a_revoked_client_gets_no_new_token(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    created = await devstack.graphql(
        stack,
        'mutation { createApiClient(input: {name: "shop", kind: "partner", '
        'scopes: ["purchases:write"]}) { client { id scopes } clientSecret } }',
        token=admin,
    )
    client = created["data"]["createApiClient"]
    assert client["client"]["scopes"] == ["purchases:write"]
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client"]["id"],
        "client_secret": client["clientSecret"],
    }
    async with httpx.AsyncClient() as http:
        before = await http.post(stack.url("identity", "/oauth/token"), data=form)
        revoked = await devstack.graphql(
            stack,
            "mutation($id: ID!) { revokeApiClient(id: $id) { active } }",
            {"id": client["client"]["id"]},
            token=admin,
        )
        after = await http.post(stack.url("identity", "/oauth/token"), data=form)
    assert before.status_code == 200
    assert revoked["data"]["revokeApiClient"]["active"] is False
    assert after.status_code == 401


async def test_a_partner_client_cannot_be_granted_admin_scopes(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    result = await devstack.graphql(
        stack,
        'mutation { createApiClient(input: {name: "x", kind: "partner", '
        'scopes: ["access:manage"]}) { clientSecret } }',
        token=admin,
    )
    assert _code(result) == "BAD_USER_INPUT"
    assert result["errors"][0]["extensions"]["field"] == "input.scopes"


async def test_staff_actions_are_in_the_audit_log_for_admins_only(stack: devstack.Stack) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    made = await devstack.graphql(
        stack,
        "mutation($i: CreateStaffUserInput!) { createStaffUser(input: $i) { id role } }",
        {
            "i": {
                "email": "Agent.Smith@Example.com",
                "password": "correct horse battery",
                "role": "agent",
            }
        },
        token=admin,
    )
    user_id = made["data"]["createStaffUser"]["id"]

    async def log() -> list[dict[str, Any]]:
        result = await devstack.graphql(
            stack,
            "query($r: String) { auditLog(first: 10, recordId: $r) "
            "{ edges { node { actor action recordType recordId details at } } } }",
            {"r": user_id},
            token=admin,
        )
        edges: list[dict[str, Any]] = result["data"]["auditLog"]["edges"]
        return edges

    # The record travels through identity's outbox and back in: it appears within moments.
    [edge] = await eventually(log, lambda edges: len(edges) > 0)
    viewer = (await _viewer(stack, admin, "gateway"))["data"]["viewer"]
    assert edge["node"]["actor"] == f"staff:{viewer['subject']}"
    assert edge["node"]["action"] == "staff_user.created"
    assert edge["node"]["details"] == {"role": "agent"}
    other_tenant_admin = await staff_token(stack, make_tenant(stack))
    elsewhere = await devstack.graphql(
        stack,
        "query($r: String) { auditLog(first: 10, recordId: $r) { edges { cursor } } }",
        {"r": user_id},
        token=other_tenant_admin,
    )
    assert elsewhere["data"]["auditLog"]["edges"] == []
    marketer = await staff_token(stack, tenant_id, role="marketer")
    refused = await devstack.graphql(
        stack, "{ auditLog(first: 1) { edges { cursor } } }", token=marketer
    )
    assert _code(refused) == "FORBIDDEN"
