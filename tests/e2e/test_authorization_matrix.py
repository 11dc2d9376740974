"""Every field of every subgraph, probed: who may call it, and whether another tenant can tell.

The probe reads each subgraph's schema by introspection (straight to the subgraph, as an
attacker past the gateway would) and calls every root query, mutation and subscription (over
graphql-transport-ws), and every field the subgraph resolves on an entity through
``_entities``, with dummy arguments:

- with a token holding no scope at all: every field must refuse (no open doors);
- with tokens holding groups of scopes, split in halves while a group opens the field, down
  to single scopes (a refused group holds no scope that opens the field on its own): the
  scopes that open the field are its requirement; the map of field to scopes is written
  to ``docs/authorization.md`` and the test fails while that file is stale (so a change of
  who may do what is always a reviewed change of the document);
- with one token per role: a role may call the field exactly when the role table in
  ``crm_shared.auth`` gives it one of the field's scopes;
- with an admin of another tenant, asking about this tenant's customer: the answers must be
  the same as for an id that exists nowhere (another tenant cannot even tell it exists).

The field list is derived once per run (one introspection per subgraph) and the fields are
probed in parallel, ``CRM_PROBE_CONCURRENCY`` (6) at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    build_client_schema,
    get_introspection_query,
    get_named_type,
    is_leaf_type,
)
from websockets.typing import Subprotocol

from crm_shared import devstack
from crm_shared.auth import ROLE_PERMISSIONS, ROLES, Permission
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import client_token, create_staff_user

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization.md"
DENIED = {"FORBIDDEN", "UNAUTHENTICATED"}
# Fields any authenticated caller may use: they describe the caller or the schema only.
OPEN_TO_ANY_CALLER = {("identity", "Query", "viewer")}
FEDERATION_FIELDS = {"_service", "_entities"}
# A refused subscription is answered at once; an accepted one stays silent until an event.
# "At once" takes seconds on a loaded machine, so silence counts only after this long.
SUBSCRIPTION_SILENCE_SECONDS = float(os.environ.get("CRM_PROBE_SILENCE_SECONDS", "5"))
PROBE_CONCURRENCY = int(os.environ.get("CRM_PROBE_CONCURRENCY", "6"))
PROBE_TIMEOUT_SECONDS = 60
# Tokens live 15 minutes; the probe mints new ones well before that.
TOKEN_REUSE_SECONDS = 600
# The probe makes about 20 calls per field (about 3,000 in all): a few minutes on a quiet
# machine, up to about 15 under heavy load; the suite's 120 s is for one ordinary test.
pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class Probe:
    """One field, and the operation that calls it with dummy arguments."""

    service: str
    parent: str
    field: str
    operation: str
    variables: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.service} {self.parent}.{self.field}"


def _dummy(type_: GraphQLInputType, ids: str, depth: int = 0) -> Any:
    """A plausible value of an input type; ids point at a real customer of the tenant."""
    if isinstance(type_, GraphQLNonNull):
        return _dummy(type_.of_type, ids, depth)
    if isinstance(type_, GraphQLList):
        return [_dummy(type_.of_type, ids, depth)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: _dummy(f.type, ids, depth + 1)
            for name, f in type_.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined and depth < 4
        }
    return {
        "ID": ids,
        "String": "probe",
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "DateTime": "2026-01-01T00:00:00+00:00",
        "Date": "2026-01-01",
        "JSON": {},
        "UUID": ids,
    }.get(type_.name, "probe")


def _selection(type_: Any) -> str:
    named = get_named_type(type_)
    return "" if is_leaf_type(named) else " { __typename }"


def _call(field_name: str, field: Any, ids: str, prefix: str) -> tuple[str, str, dict[str, Any]]:
    """``(variable definitions, the field's call, variables)`` for one field."""
    definitions, arguments, variables = [], [], {}
    for i, (arg_name, arg) in enumerate(field.args.items()):
        if not isinstance(arg.type, GraphQLNonNull) or arg.default_value is not Undefined:
            continue
        var = f"{prefix}{i}"
        definitions.append(f"${var}: {arg.type}")
        arguments.append(f"{arg_name}: ${var}")
        variables[var] = _dummy(arg.type, ids)
    call = field_name + (f"({', '.join(arguments)})" if arguments else "")
    return ", ".join(definitions), call + _selection(field.type), variables


def _keys(sdl: str) -> dict[str, str]:
    """Entity type name -> its (single-field) key, from a subgraph's federation SDL."""
    keys = {}
    for line in sdl.splitlines():
        if line.startswith("type ") and "@key(" in line:
            name = line.split()[1]
            key = line.split('@key(fields: "', 1)[1].split('"', 1)[0]
            if " " not in key:
                keys[name] = key
    return keys


def probes(service: str, schema: GraphQLSchema, sdl: str, customer_id: str) -> list[Probe]:
    found = []
    roots = (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    )
    for kind, root in roots:
        if root is None:
            continue
        for name, field in root.fields.items():
            if name in FEDERATION_FIELDS:
                continue
            definitions, call, variables = _call(name, field, customer_id, "a")
            header = f"{kind} Probe({definitions})" if definitions else f"{kind} Probe"
            found.append(Probe(service, root.name, name, f"{header} {{ {call} }}", variables))
    for type_name, key in _keys(sdl).items():
        entity = schema.type_map.get(type_name)
        if not isinstance(entity, GraphQLObjectType):
            continue
        for name, field in entity.fields.items():
            if name == key or name == "__typename":
                continue
            definitions, call, variables = _call(name, field, customer_id, "a")
            variables["reps"] = [{"__typename": type_name, key: customer_id}]
            defs = ", ".join(filter(None, ["$reps: [_Any!]!", definitions]))
            operation = (
                f"query Probe({defs}) {{ _entities(representations: $reps) "
                f"{{ ... on {type_name} {{ {call} }} }} }}"
            )
            found.append(Probe(service, type_name, name, operation, variables))
    return found


async def _send(
    client: httpx.AsyncClient,
    stack: devstack.Stack,
    probe: Probe,
    token: str,
    swap: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Send the probe as the bearer of ``token`` (with ``swap[0]`` replaced by ``swap[1]``)."""
    variables = probe.variables
    if swap is not None:
        variables = json.loads(json.dumps(variables).replace(*swap))
    if probe.operation.startswith("subscription"):
        return await _subscribe(stack, probe, variables, token)
    response = await client.post(
        stack.url(probe.service, "/graphql"),
        json={"query": probe.operation, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code < 500, (probe.name, response.text)
    body: dict[str, Any] = response.json()
    return body


async def _subscribe(
    stack: devstack.Stack, probe: Probe, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    """A subscription probe over graphql-transport-ws: a refusal comes at once; an accepted
    subscription waits for events, so silence within a moment means it was let through."""
    url = stack.url(probe.service, "/graphql").replace("http://", "ws://")
    async with websockets.connect(
        url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers={"authorization": f"Bearer {token}"},
        open_timeout=PROBE_TIMEOUT_SECONDS,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": probe.operation, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), SUBSCRIPTION_SILENCE_SECONDS))
        except TimeoutError:
            return {"data": None}
    if frame["type"] == "error":
        return {"errors": frame["payload"]}
    body: dict[str, Any] = frame.get("payload") or {}
    return body


def _codes(result: dict[str, Any]) -> set[str]:
    return {str((e.get("extensions") or {}).get("code")) for e in result.get("errors") or []}


def _denied(result: dict[str, Any]) -> bool:
    return bool(_codes(result) & DENIED)


def _shape(value: Any) -> Any:
    """The shape of a result: keys and value types, not values (ids differ by design)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in ("message", "locations")}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


@dataclass
class Findings:
    requirements: dict[str, list[str]]
    open_fields: list[str]
    role_mismatches: list[str]
    leaks: list[str]
    invalid_probes: list[str]


class Tokens:
    """Tokens by name, minted on first use and minted again before they expire (a probe of
    every field on a loaded machine can outlast a token's 15 minutes)."""

    def __init__(self, lifetime: float = TOKEN_REUSE_SECONDS) -> None:
        self.lifetime = lifetime
        self._minted: dict[Any, tuple[asyncio.Task[str], float]] = {}

    async def get(self, key: Any, mint: Callable[[], Awaitable[str]]) -> str:
        found = self._minted.get(key)
        if found is None or found[1] < time.monotonic():
            found = (asyncio.ensure_future(mint()), time.monotonic() + self.lifetime)
            self._minted[key] = found
        return await found[0]


async def _explore(stack: devstack.Stack) -> Findings:
    tenant = make_tenant(stack)
    other_tenant = make_tenant(stack)
    admin_user = await create_staff_user(stack, tenant, "admin")
    role_users: dict[str, tuple[str, str]] = {
        role: await create_staff_user(stack, tenant, role) for role in ROLES
    }
    other_user = await create_staff_user(stack, other_tenant, "admin")
    # The scopes a staff login can be narrowed to; token:exchange is a client's scope only.
    staff_scopes = tuple(sorted(p.value for p in ROLE_PERMISSIONS["admin"]))
    tokens = Tokens()
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_SECONDS) as client:

        async def login(tenant_id: str, user: tuple[str, str], scope: str | None = None) -> str:
            form = {
                "grant_type": "password",
                "username": user[0],
                "password": user[1],
                "tenant": tenant_id,
            }
            if scope is not None:
                form["scope"] = scope
            response = await client.post(stack.url("identity", "/oauth/token"), data=form)
            assert response.status_code == 200, response.text
            token: str = response.json()["access_token"]
            return token

        def holding(scopes: tuple[str, ...]) -> Awaitable[str]:
            """An admin's login narrowed to ``scopes`` (a client for token:exchange)."""
            if scopes == (Permission.TOKEN_EXCHANGE.value,):
                return tokens.get(scopes, lambda: client_token(stack, tenant, scopes))
            return tokens.get(scopes, lambda: login(tenant, admin_user, " ".join(scopes)))

        def no_scope() -> Awaitable[str]:
            return tokens.get("none", lambda: client_token(stack, tenant, []))

        def of_role(role: str) -> Awaitable[str]:
            return tokens.get(role, lambda: login(tenant, role_users[role]))

        def other_admin() -> Awaitable[str]:
            return tokens.get("other", lambda: login(other_tenant, other_user))

        registered = await devstack.graphql(
            stack, REGISTER, {"input": {"name": "Probe Target"}}, token=await holding(staff_scopes)
        )
        customer_id = registered["data"]["registerCustomer"]["id"]

        # The field list, derived once: each subgraph's own schema, by introspection.
        all_probes: list[Probe] = []
        for service in devstack.SUBGRAPHS:
            url = stack.url(service, "/graphql")
            introspected = (
                await client.post(url, json={"query": get_introspection_query()})
            ).json()
            sdl = (await client.post(url, json={"query": "{ _service { sdl } }"})).json()
            schema = build_client_schema(introspected["data"])
            all_probes += probes(service, schema, sdl["data"]["_service"]["sdl"], customer_id)

        findings = Findings({}, [], [], [], [])
        gate = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def allowed(probe: Probe, scopes: tuple[str, ...]) -> bool:
            return not _denied(await _send(client, stack, probe, await holding(scopes)))

        async def opening(probe: Probe, scopes: tuple[str, ...]) -> list[str]:
            """The scopes among ``scopes`` that open ``probe`` each on its own. A token that
            holds a group and is refused means no scope of the group opens the field alone
            (more scopes never close a field), so a refused group is not split further: a
            field opened by one scope costs about 2·log2(n) calls instead of n."""
            if not await allowed(probe, scopes):
                return []
            if len(scopes) == 1:
                return list(scopes)
            half = len(scopes) // 2
            return await opening(probe, scopes[:half]) + await opening(probe, scopes[half:])

        async def examine(probe: Probe) -> None:
            async with gate:
                unauthorized = await _send(client, stack, probe, await no_scope())
                if not _denied(unauthorized):
                    if any("path" not in e for e in unauthorized.get("errors") or []):
                        findings.invalid_probes.append(f"{probe.name}: {unauthorized}")
                    elif (probe.service, probe.parent, probe.field) not in OPEN_TO_ANY_CALLER:
                        findings.open_fields.append(probe.name)
                    return
                exchange = (Permission.TOKEN_EXCHANGE.value,)
                opened = await opening(probe, staff_scopes) + await opening(probe, exchange)
                findings.requirements[probe.name] = sorted(opened)
                for role in ROLES:
                    expected = any(Permission(s) in ROLE_PERMISSIONS[role] for s in opened)
                    actual = not _denied(await _send(client, stack, probe, await of_role(role)))
                    if opened and expected != actual:
                        findings.role_mismatches.append(
                            f"{probe.name}: role {role} expected {expected}, got {actual}"
                        )
                theirs = await _send(client, stack, probe, await other_admin())
                nowhere = await _send(
                    client, stack, probe, await other_admin(), swap=(customer_id, str(uuid.uuid4()))
                )
                if _shape(theirs) != _shape(nowhere) or _codes(theirs) != _codes(nowhere):
                    findings.leaks.append(f"{probe.name}: {theirs} vs {nowhere}")

        await asyncio.gather(*(examine(p) for p in all_probes))
    return findings


def render(requirements: dict[str, list[str]]) -> str:
    """docs/authorization.md: which scopes open each field."""
    lines = [
        "# Who may call what",
        "",
        "Generated by `tests/e2e/test_authorization_matrix.py` from the running services: for",
        "every root field and every entity field of every subgraph, the scopes that open it (any",
        "one suffices). Which roles hold which scope: the role table of",
        "[identity's README](../services/identity/README.md#access-who-may-do-what).",
        "Regenerate with `CRM_WRITE_AUTHORIZATION_DOC=1 make test` (or that test alone).",
        "",
        "| subgraph | field | scopes |",
        "|---|---|---|",
    ]
    for name in sorted(requirements):
        service, field = name.split(" ", 1)
        scopes = ", ".join(f"`{s}`" for s in requirements[name]) or "(needs several)"
        lines.append(f"| {service} | `{field}` | {scopes} |")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def findings(stack: devstack.Stack) -> Iterator[Findings]:
    yield asyncio.run(_explore(stack))


def test_no_field_of_any_subgraph_answers_a_token_without_scopes(findings: Findings) -> None:
    assert findings.invalid_probes == []
    assert findings.open_fields == []


def test_each_role_may_call_exactly_the_fields_its_scopes_open(findings: Findings) -> None:
    assert findings.role_mismatches == []


def test_another_tenant_cannot_tell_this_tenants_customer_from_nobody(findings: Findings) -> None:
    assert findings.leaks == []


def test_the_documented_field_scopes_are_current(findings: Findings) -> None:
    assert findings.requirements, "the probe found no protected field"
    rendered = render(findings.requirements)
    if os.environ.get("CRM_WRITE_AUTHORIZATION_DOC"):
        DOC.write_text(rendered)
    assert DOC.exists() and DOC.read_text() == rendered, (
        "docs/authorization.md is stale: run with CRM_WRITE_AUTHORIZATION_DOC=1"
    )
