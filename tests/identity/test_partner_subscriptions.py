"""Partner broker subscriptions: a partner client gets its own queue of its tenant's events of
the chosen types, read with a plain AMQP client (pika, not our library), and nothing more:
no other queue, no other tenant's routing keys, no publishing but its own tenant's partner
facts. Revoking removes it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions
import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import create_client, staff_token
from tests.support.waiting import eventually

CREATE = """
mutation($client: ID!, $types: [String!]!) {
  createPartnerSubscription(clientId: $client, eventTypes: $types) {
    subscription { id clientId brokerUser queue eventTypes revokedAt }
    brokerPassword vhost exchange
  }
}
"""
REVOKE = "mutation($id: ID!) { revokePartnerSubscription(id: $id) { id revokedAt } }"
LIST = "{ partnerSubscriptions { id queue eventTypes revokedAt } }"


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    """The code and field of the first error of a GraphQL answer."""
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


REGISTER = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }"
UPDATE = "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { id } }"
REGISTERED = "identity.customer.registered.v1"


def _connect(stack: devstack.Stack, user: str, password: str) -> pika.BlockingConnection:
    host, port = stack.amqp_host.split("@")[-1].split(":")
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host=host,
            port=int(port),
            virtual_host=stack.vhost,
            credentials=pika.PlainCredentials(user, password),
            connection_attempts=1,
            blocked_connection_timeout=5,
        )
    )


def _refused(action: Any) -> int:
    """The AMQP reply code with which the broker closed the channel for ``action``."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        action()
    return int(refused.value.reply_code)


async def _subscribe(
    stack: devstack.Stack, tenant_id: str, admin: str, types: list[str]
) -> dict[str, Any]:
    client_id, _ = await create_client(stack, tenant_id, kind="partner", scopes=["customers:read"])
    result = await devstack.graphql(
        stack, CREATE, {"client": client_id, "types": types}, token=admin
    )
    assert "errors" not in result, result
    created: dict[str, Any] = result["data"]["createPartnerSubscription"]
    return created


def _drain(channel: Any, queue: str) -> Iterator[dict[str, Any]]:
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return
        yield json.loads(body)


async def test_a_partner_reads_its_tenants_chosen_events_and_nothing_else(
    stack: devstack.Stack,
) -> None:
    tenant_id, other_tenant = make_tenant(stack), make_tenant(stack)
    admin, other_admin = await staff_token(stack, tenant_id), await staff_token(stack, other_tenant)
    created = await _subscribe(stack, tenant_id, admin, [REGISTERED])
    subscription = created["subscription"]
    assert subscription["eventTypes"] == [REGISTERED]
    assert (created["vhost"], created["exchange"]) == (stack.vhost, "crm.events")
    user, queue = subscription["brokerUser"], subscription["queue"]

    ours = await devstack.graphql(
        stack,
        REGISTER,
        {"input": {"name": "Ann", "email": f"{uuid.uuid4().hex}@x.com"}},
        token=admin,
    )
    customer_id = ours["data"]["registerCustomer"]["id"]
    await devstack.graphql(
        stack, UPDATE, {"input": {"id": customer_id, "givenName": "A"}}, token=admin
    )  # an updated event of our tenant: not a chosen type
    await devstack.graphql(
        stack, REGISTER, {"input": {"name": "Bob"}}, token=other_admin
    )  # the other tenant's registration: not ours

    connection = await asyncio.to_thread(_connect, stack, user, created["brokerPassword"])
    try:
        channel = connection.channel()

        def received() -> list[dict[str, Any]]:
            return list(_drain(channel, queue))

        got: list[dict[str, Any]] = []

        async def collect() -> list[dict[str, Any]]:
            got.extend(await asyncio.to_thread(received))
            return got

        await eventually(collect, lambda g: len(g) >= 1, timeout=20)
        await asyncio.sleep(1.5)  # anything else that would arrive, arrives
        await collect()
        assert [(e["type"], e["tenantid"], e["subject"]) for e in got] == [
            (REGISTERED, tenant_id, customer_id)
        ]

        # Its chosen types of its own tenant it may bind (topic permissions allow them) ...
        channel.queue_bind(queue, "crm.events", f"{REGISTERED}.{tenant_id}")
        # ... another tenant's it may not, nor other types, nor a wildcard.
        for key in (
            f"{REGISTERED}.{other_tenant}",
            f"identity.customer.updated.v1.{tenant_id}",
            f"#.{tenant_id}",
            "#",
            f"{REGISTERED}.*",
        ):
            assert (
                _refused(lambda k=key: connection.channel().queue_bind(queue, "crm.events", k))
                == 403
            )
        # It reads no other queue; it publishes only its own tenant's partner facts.
        assert _refused(lambda: connection.channel().basic_get("identity.events")) == 403
        for key in (
            f"{REGISTERED}.{tenant_id}",
            f"partner.purchase.reported.v1.{other_tenant}",
            "partner.purchase.reported.v1.#",
        ):
            publisher = connection.channel()
            publisher.confirm_delivery()
            assert (
                _refused(lambda p=publisher, k=key: p.basic_publish("crm.events", k, b"{}")) == 403
            )
        facts = connection.channel()
        facts.confirm_delivery()
        facts.basic_publish("crm.events", f"partner.purchase.reported.v1.{tenant_id}", b"{}")
        default = connection.channel()
        default.confirm_delivery()
        assert _refused(lambda: default.basic_publish("", "rewards.events", b"{}")) == 403
        assert (
            _refused(lambda: connection.channel().queue_declare(f"partner.{uuid.uuid4()}")) == 403
        )
    finally:
        if connection.is_open:
            connection.close()

    listed = (await devstack.graphql(stack, LIST, token=admin))["data"]["partnerSubscriptions"]
    assert [s["queue"] for s in listed] == [queue]
    hidden = (await devstack.graphql(stack, LIST, token=other_admin))["data"][
        "partnerSubscriptions"
    ]
    assert hidden == []

    revoked = await devstack.graphql(stack, REVOKE, {"id": subscription["id"]}, token=admin)
    assert revoked["data"]["revokePartnerSubscription"]["revokedAt"] is not None
    with pytest.raises(pika.exceptions.AMQPConnectionError):  # login refused
        await asyncio.to_thread(_connect, stack, user, created["brokerPassword"])


async def test_another_tenants_staff_cannot_revoke_and_bad_types_are_named(
    stack: devstack.Stack,
) -> None:
    tenant_id, other_tenant = make_tenant(stack), make_tenant(stack)
    admin, other_admin = await staff_token(stack, tenant_id), await staff_token(stack, other_tenant)
    created = await _subscribe(stack, tenant_id, admin, [REGISTERED])
    result = await devstack.graphql(
        stack, REVOKE, {"id": created["subscription"]["id"]}, token=other_admin
    )
    assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    client_id, _ = await create_client(stack, tenant_id, kind="partner", scopes=["customers:read"])
    bad = await devstack.graphql(
        stack, CREATE, {"client": client_id, "types": ["identity.customer.#"]}, token=admin
    )
    assert _error(bad) == ("BAD_USER_INPUT", "eventTypes")
    twice = await devstack.graphql(
        stack,
        CREATE,
        {"client": created["subscription"]["clientId"], "types": [REGISTERED]},
        token=admin,
    )
    assert _error(twice) == ("CONFLICT", "clientId")
    marketer = await staff_token(stack, tenant_id, role="marketer")
    forbidden = await devstack.graphql(
        stack, CREATE, {"client": client_id, "types": [REGISTERED]}, token=marketer
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
