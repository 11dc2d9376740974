"""Partner broker subscriptions: a partner client gets its own queue of its tenant's events of
the chosen types, read with a plain AMQP client (pika, not our library), and nothing more:
no other queue, no other tenant's routing keys, no binding to the services' own exchange
(which would bypass the partner_sharing check), no publishing but its own tenant's partner
facts. Revoking removes it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pika
import pika.exceptions
import pytest

from crm_shared import devstack
from tests.e2e.conftest import make_tenant
from tests.support.auth import create_client, staff_token
from tests.support.partners import CREATE_SUBSCRIPTION as CREATE
from tests.support.partners import connect as _connect
from tests.support.partners import drain as _drain
from tests.support.partners import sharing_customer as _sharing_customer
from tests.support.partners import subscribe as _subscribe
from tests.support.waiting import eventually

REVOKE = """
mutation($id: ID!) { revokePartnerSubscription(id: $id) { id revokedAt revokedReason } }
"""
LIST = "{ partnerSubscriptions { id queue eventTypes revokedAt } }"
UPDATE = "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { id } }"
REGISTERED = "identity.customer.registered.v1"
UPDATED = "identity.customer.updated.v1"


def _error(result: dict[str, Any]) -> tuple[str, str | None]:
    """The code and field of the first error of a GraphQL answer."""
    extensions = result["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field")


def _refused(action: Any) -> int:
    """The AMQP reply code with which the broker closed the channel for ``action``."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        action()
    return int(refused.value.reply_code)


async def test_a_partner_reads_its_tenants_chosen_events_and_nothing_else(
    stack: devstack.Stack,
) -> None:
    tenant_id, other_tenant = make_tenant(stack), make_tenant(stack)
    admin, other_admin = await staff_token(stack, tenant_id), await staff_token(stack, other_tenant)
    created = await _subscribe(stack, tenant_id, admin, [UPDATED])
    subscription = created["subscription"]
    assert subscription["eventTypes"] == [UPDATED]
    assert (created["vhost"], created["exchange"], created["publishExchange"]) == (
        stack.vhost,
        "crm.partners",
        "crm.events",
    )
    user, queue = subscription["brokerUser"], subscription["queue"]

    # Customers who granted partner_sharing (see test_partner_consent for those who did not).
    customer_id = await _sharing_customer(stack, admin, "Ann")  # registered: not a chosen type
    await devstack.graphql(
        stack, UPDATE, {"input": {"id": customer_id, "givenName": "A"}}, token=admin
    )
    bob = await _sharing_customer(stack, other_admin, "Bob")
    await devstack.graphql(
        stack, UPDATE, {"input": {"id": bob, "givenName": "B"}}, token=other_admin
    )  # the other tenant's update: not ours

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
            (UPDATED, tenant_id, customer_id)
        ]

        # Its chosen types of its own tenant it may bind (topic permissions allow them) ...
        channel.queue_bind(queue, "crm.partners", f"{UPDATED}.{tenant_id}")
        # ... another tenant's it may not, nor other types, nor a wildcard ...
        for key in (
            f"{UPDATED}.{other_tenant}",
            f"{REGISTERED}.{tenant_id}",
            f"#.{tenant_id}",
            "#",
            f"{UPDATED}.*",
        ):
            assert (
                _refused(lambda k=key: connection.channel().queue_bind(queue, "crm.partners", k))
                == 403
            )
        # ... and nothing of the services' exchange, where events are not checked yet.
        assert (
            _refused(
                lambda: connection.channel().queue_bind(
                    queue, "crm.events", f"{UPDATED}.{tenant_id}"
                )
            )
            == 403
        )
        # It reads no other queue; it publishes only its own tenant's partner facts.
        assert _refused(lambda: connection.channel().basic_get("identity.events")) == 403
        for key in (
            f"{UPDATED}.{tenant_id}",
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
        # It cannot feed the partner exchange (other partners' queues) either.
        feed = connection.channel()
        feed.confirm_delivery()
        assert (
            _refused(lambda: feed.basic_publish("crm.partners", f"{UPDATED}.{tenant_id}", b"{}"))
            == 403
        )
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
    assert revoked["data"]["revokePartnerSubscription"]["revokedReason"] == "revoked by staff"
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
