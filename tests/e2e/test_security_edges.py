"""Issue 15 against the real services: the attacks of the issue, each refused.

Revocation within seconds (deactivated staff, revoked clients and the customer tokens they
exchanged) at the gateway and at a subgraph reached directly; limits before parsing on every
service; stored JSON bounded so it can always be read back; no schema hints for strangers;
``_service`` and ``/metrics`` closed in production. The gateway's own edge is in
``tests/gateway/test_edge_security.py``; SSRF in ``tests/shared/test_outbound.py`` and
``tests/identity/test_webhooks.py``; login throttling in ``tests/identity/test_login_throttle.py``;
references across tenants in the rewards tests named in the README's Security section.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from crm_shared import devstack
from tests.e2e.conftest import REGISTER, make_tenant
from tests.support.auth import _token_request, create_client, create_staff_user, staff_token

SUBGRAPH_SERVICES = ("identity", "engagement", "rewards")
# Within a few refreshes of the revocation list (2 s) on a loaded machine.
REVOCATION_SECONDS = 15
CUSTOMERS = "query { customers(first: 1) { edges { node { id } } } }"
# A field each service serves only to a caller (UNAUTHENTICATED comes before any scope check).
PROBES = {
    "gateway": CUSTOMERS,
    "identity": CUSTOMERS,
    "engagement": f'query {{ interactionCount(customerId: "{uuid.UUID(int=0)}") }}',
    "rewards": "query { rules(first: 1) { edges { node { id } } } }",
}


async def _post(
    stack: devstack.Stack, query: str, token: str, service: str = "gateway", **variables: Any
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            stack.url(service, "/graphql"),
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )


def _unauthenticated(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    errors = response.json().get("errors") or []
    return any(e.get("extensions", {}).get("code") == "UNAUTHENTICATED" for e in errors)


async def _refused_within(
    stack: devstack.Stack, token: str, seconds: float, services: tuple[str, ...]
) -> float:
    """Seconds until ``token`` is refused by every one of ``services``."""
    started = time.monotonic()
    pending = set(services)
    while pending:
        for service in sorted(pending):
            if _unauthenticated(await _post(stack, PROBES[service], token, service)):
                pending.discard(service)
        if pending:
            assert time.monotonic() - started < seconds, f"still accepted by {pending}"
            await asyncio.sleep(0.2)
    return time.monotonic() - started


async def _staff(stack: devstack.Stack, tenant_id: str, role: str) -> tuple[str, str]:
    """A new staff user's id and token."""
    email, password = await create_staff_user(stack, tenant_id, role)
    token = await _token_request(
        stack,
        {"grant_type": "password", "username": email, "password": password, "tenant": tenant_id},
    )
    return str(jwt.decode(token, options={"verify_signature": False})["sub"]), token


async def test_a_deactivated_staff_users_token_stops_working_within_seconds(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    user_id, token = await _staff(stack, tenant_id, "agent")
    assert not _unauthenticated(await _post(stack, CUSTOMERS, token))

    deactivate = "mutation($id: ID!) { updateStaffUser(id: $id, active: false) { active } }"
    answer = (await _post(stack, deactivate, admin, id=user_id)).json()
    assert answer["data"] == {"updateStaffUser": {"active": False}}

    await _refused_within(stack, token, REVOCATION_SECONDS, ("gateway", *SUBGRAPH_SERVICES))
    written = await _post(stack, REGISTER, token, input={"name": "Mallory"})
    assert written.status_code == 401
    assert "revoked" in written.json()["errors"][0]["message"]
    assert not _unauthenticated(await _post(stack, CUSTOMERS, admin))


async def test_a_demoted_admins_old_token_loses_its_scopes_within_seconds(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    user_id, token = await _staff(stack, tenant_id, "admin")

    demote = 'mutation($id: ID!) { updateStaffUser(id: $id, role: "analyst") { role } }'
    assert (await _post(stack, demote, admin, id=user_id)).json()["data"] is not None

    await _refused_within(stack, token, REVOCATION_SECONDS, ("gateway", "identity"))


async def test_a_revoked_clients_tokens_and_its_customers_tokens_stop_working(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    registered = await _post(stack, REGISTER, admin, input={"name": "Ann"})
    customer_id = registered.json()["data"]["registerCustomer"]["id"]
    client_id, secret = await create_client(
        stack, tenant_id, kind="frontend", scopes=["customers:read", "token:exchange"]
    )
    client = await _token_request(
        stack,
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    customer = await _token_request(
        stack,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": client_id,
            "client_secret": secret,
            "subject_token": customer_id,
            "subject_token_type": "urn:social-crm:params:token-type:customer-id",
        },
    )
    own = "query($id: ID!) { customer(id: $id) { id } }"
    assert (await _post(stack, own, customer, id=customer_id)).json()["data"] is not None

    revoke = "mutation($id: ID!) { revokeApiClient(id: $id) { id } }"
    assert (await _post(stack, revoke, admin, id=client_id)).json()["data"] is not None

    await _refused_within(stack, client, REVOCATION_SECONDS, ("gateway", *SUBGRAPH_SERVICES))
    await _refused_within(stack, customer, REVOCATION_SECONDS, ("gateway", "identity"))


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_preferences_nested_deep_are_refused_and_lists_stay_readable(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)

    deep = await _post(stack, REGISTER, admin, input={"name": "Deep", "preferences": _nested(20)})
    very_deep = await _post(
        stack, REGISTER, admin, input={"name": "Deeper", "preferences": _nested(250)}
    )
    direct = await _post(
        stack, REGISTER, admin, "identity", input={"name": "Deeper", "preferences": _nested(250)}
    )
    fine = await _post(stack, REGISTER, admin, input={"name": "Ok", "preferences": _nested(5)})
    listed = await _post(
        stack, "query { customers(first: 20) { edges { node { name preferences } } } }", admin
    )

    (error,) = deep.json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "input.preferences",
    )
    assert [very_deep.status_code, direct.status_code] == [400, 400]
    assert fine.json()["data"]["registerCustomer"]["name"] == "Ok"
    assert listed.status_code == 200
    names = [e["node"]["name"] for e in listed.json()["data"]["customers"]["edges"]]
    assert names == ["Ok"]


@pytest.mark.parametrize("service", SUBGRAPH_SERVICES)
async def test_every_service_refuses_large_and_deep_bodies_before_parsing(
    stack: devstack.Stack, service: str
) -> None:
    large = json.dumps({"query": "{ __typename }\n#" + "x" * 2_000_000})
    deep = '{"query": "{ __typename }", "variables": {"v": ' + "[" * 1000 + "]" * 1000 + "}}"
    async with httpx.AsyncClient(timeout=30) as http:
        answers = [
            await http.post(
                stack.url(service, "/graphql"),
                content=body,
                headers={"content-type": "application/json"},
            )
            for body in (large, deep)
        ]

    assert [a.status_code for a in answers] == [413, 400]
    assert [a.json()["errors"][0]["extensions"]["code"] for a in answers] == [
        "PAYLOAD_TOO_LARGE",
        "BAD_REQUEST",
    ]


@pytest.mark.parametrize("service", SUBGRAPH_SERVICES)
async def test_a_subgraph_gives_no_field_suggestions_without_a_token(
    stack: devstack.Stack, service: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        anonymous = await http.post(
            stack.url(service, "/graphql"), json={"query": "{ customerz { id } }"}
        )
    with_token = await _post(
        stack, "{ customerz { id } }", await staff_token(stack, make_tenant(stack)), service
    )

    assert anonymous.json()["errors"]
    assert "Did you mean" not in anonymous.text
    # The mechanism hides hints from strangers only: staff still get them outside production.
    assert "Did you mean" in with_token.text or service != "identity"


async def test_the_gateway_wants_a_token_for_typename(stack: devstack.Stack) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            stack.url("gateway", "/graphql"), json={"query": "{ __typename }"}
        )

    assert response.status_code == 401


def _production_app(**overrides: Any) -> Any:
    from rewards.main import create_app
    from rewards.settings import RewardsSettings

    settings = RewardsSettings(
        environment="production",
        database_url="postgresql://rewards_svc:secret@127.0.0.1:1/nowhere",
        amqp_url="amqp://rewards:secret@127.0.0.1:1/nowhere",
        jwks_url="http://127.0.0.1:1/.well-known/jwks.json",
        **overrides,
    )
    return create_app(settings)


@pytest.mark.parametrize(
    "query",
    [
        "{ _service { sdl } }",
        "{ s: __typename ...F } fragment F on Query { _service { sdl } }",
        "{ __schema { queryType { name } } }",
        '{ t: __type(name: "Query") { name } }',
    ],
)
async def test_production_serves_no_sdl_or_introspection_unless_asked_to(query: str) -> None:
    closed = _production_app()
    opened = _production_app(expose_sdl=True)

    async def ask(app: Any) -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rewards") as http:
            body: dict[str, Any] = (await http.post("/graphql", json={"query": query})).json()
            return body

    refused, served = await ask(closed), await ask(opened)

    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused.get("data") is None
    assert "errors" not in served
    assert "Query" in json.dumps(served["data"])


async def test_production_metrics_answer_only_the_metrics_token() -> None:
    app = _production_app(metrics_token="scrape-" + uuid.uuid4().hex)
    token = app.state.settings.metrics_token.get_secret_value()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rewards") as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
        scraper = await http.get("/metrics", headers={"authorization": f"Bearer {token}"})

    assert [anonymous.status_code, wrong.status_code, scraper.status_code] == [404, 404, 200]
    assert "http_server" in scraper.text or "# " in scraper.text


BALANCE = "subscription($id: ID!) { balanceChanged(customerId: $id) { rewards { balance } } }"
ADJUST = "mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { balance } }"


async def test_an_open_subscription_of_a_deactivated_user_gets_no_further_event(
    stack: devstack.Stack,
) -> None:
    tenant_id = make_tenant(stack)
    admin = await staff_token(stack, tenant_id)
    user_id, agent = await _staff(stack, tenant_id, "agent")
    registered = await _post(stack, REGISTER, admin, input={"name": "Watched"})
    customer_id = registered.json()["data"]["registerCustomer"]["id"]

    async def adjust(*, account_may_be_missing: bool = False) -> None:
        key = str(uuid.uuid4())
        variables = {"customerId": customer_id, "points": 1, "reason": "goodwill"}
        answer = await _post(stack, ADJUST, admin, input={**variables, "idempotencyKey": key})
        errors = answer.json().get("errors") or []
        if account_may_be_missing and [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]:
            return  # rewards opens the account from the registration event, a moment later
        assert not errors, answer.text

    url = stack.url("gateway", "/graphql").replace("http://", "ws://")
    async with websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {agent}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": BALANCE, "variables": {"id": customer_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        for _ in range(60):  # live once the subgraph has bound its queue
            await adjust(account_may_be_missing=True)
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1))
            except TimeoutError:
                continue
            assert message["type"] == "next", message
            break
        else:
            raise AssertionError("the subscription never delivered an event")

        deactivate = "mutation($id: ID!) { updateStaffUser(id: $id, active: false) { active } }"
        assert (await _post(stack, deactivate, admin, id=user_id)).json()["data"] is not None
        await _refused_within(stack, agent, REVOCATION_SECONDS, ("gateway",))
        account = "query($id: ID!) { customer(id: $id) { rewards { balance } } }"
        before = await _post(stack, account, admin, id=customer_id)
        revealing = before.json()["data"]["customer"]["rewards"]["balance"] + 1
        await adjust()
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # events of the nudges before the revocation, then the close
                message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert message["type"] == "next"
                seen = message["payload"]["data"]["balanceChanged"]["rewards"]["balance"]
                assert seen < revealing
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
