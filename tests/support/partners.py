"""A partner's side of the broker, with a plain AMQP client (pika, not our library), and the
GraphQL steps partner tests share: subscriptions, consenting customers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions

from crm_shared import devstack
from tests.support.auth import create_client

CREATE_SUBSCRIPTION = """
mutation($client: ID!, $types: [String!]!) {
  createPartnerSubscription(clientId: $client, eventTypes: $types) {
    subscription { id clientId brokerUser queue eventTypes revokedAt }
    brokerPassword vhost exchange publishExchange
  }
}
"""
REGISTER = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }"
UPDATE = "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { id } }"
CONSENT = """
mutation($input: RecordConsentInput!) { recordConsent(input: $input) { purpose granted } }
"""


async def ok(
    stack: devstack.Stack, query: str, variables: dict[str, Any] | None, token: str
) -> Any:
    """The data of a GraphQL answer that must have no errors."""
    result = await devstack.graphql(stack, query, variables, token=token)
    assert "errors" not in result, result
    return result["data"]


def connect(stack: devstack.Stack, user: str, password: str) -> pika.BlockingConnection:
    """A partner's AMQP connection to the stack's vhost (raises when the login is refused)."""
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


def drain(channel: Any, queue: str) -> Iterator[dict[str, Any]]:
    """Every message waiting in ``queue``, acked, as parsed JSON."""
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return
        yield json.loads(body)


class PartnerQueue:
    """A partner reading its queue with pika: ``await take()`` collects what arrived."""

    def __init__(self, connection: pika.BlockingConnection, queue: str) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.queue = queue
        self.received: list[dict[str, Any]] = []

    async def take(self) -> list[dict[str, Any]]:
        self.received.extend(await asyncio.to_thread(lambda: list(drain(self.channel, self.queue))))
        return self.received

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


async def subscribe(
    stack: devstack.Stack, tenant_id: str, admin: str, types: list[str]
) -> dict[str, Any]:
    """A new partner client of the tenant and its broker subscription (with the password)."""
    client_id, _ = await create_client(stack, tenant_id, kind="partner", scopes=["customers:read"])
    data = await ok(stack, CREATE_SUBSCRIPTION, {"client": client_id, "types": types}, admin)
    created: dict[str, Any] = data["createPartnerSubscription"]
    return created


async def customer(stack: devstack.Stack, admin: str, name: str) -> str:
    """A new customer of the admin's tenant; their id."""
    data = await ok(
        stack,
        REGISTER,
        {"input": {"name": name, "email": f"{uuid.uuid4().hex[:12]}@example.com"}},
        admin,
    )
    customer_id: str = data["registerCustomer"]["id"]
    return customer_id


async def partner_sharing(
    stack: devstack.Stack, admin: str, customer_id: str, *, granted: bool
) -> None:
    """Record the customer's partner_sharing consent (granted or withdrawn)."""
    consent = {
        "customerId": customer_id,
        "purpose": "PARTNER_SHARING",
        "granted": granted,
        "source": "web",
        "policyVersion": "v1",
    }
    await ok(stack, CONSENT, {"input": consent}, admin)


async def sharing_customer(stack: devstack.Stack, admin: str, name: str) -> str:
    """A customer who granted partner_sharing."""
    customer_id = await customer(stack, admin, name)
    await partner_sharing(stack, admin, customer_id, granted=True)
    return customer_id


async def touch(stack: devstack.Stack, admin: str, customer_id: str, given_name: str) -> None:
    """Change the customer (an ``identity.customer.updated.v1``)."""
    await ok(stack, UPDATE, {"input": {"id": customer_id, "givenName": given_name}}, admin)
