"""Partner access to the broker, through RabbitMQ's management HTTP API.

A subscription is a broker user with a generated password, a durable quorum queue of its
own, bound to identity's partner exchange (``crm.partners``, not the services' ``crm.events``)
for ``<type>.<its tenant id>`` of the chosen types, and permissions that let the user read
that queue and nothing else. Identity republishes to the partner exchange only the events
that pass the ``partner_sharing`` check (:mod:`identity.partners.sharing`), so a partner
never sees the raw stream:

- ``configure`` none: it declares and deletes nothing;
- ``read`` its queue and the partner exchange (binding needs read on the exchange), and not
  ``crm.events``: binding its queue there would bypass the consent check;
- ``write`` its queue (``queue.bind`` needs write on the queue) and ``crm.events``, where the
  topic permissions below let it publish only its own tenant's partner facts; no other
  exchange (``amq.default`` and the partner exchange included);
- topic permissions on the partner exchange: ``read`` only the binding keys
  ``<chosen type>.<its tenant id>`` (RabbitMQ checks a binding's key against them, so no
  wildcard and no other tenant); on ``crm.events``: ``write`` only ``partner.<fact>.reported.
  v<n>.<its tenant id>`` (purchases, refunds: see docs/events.md). Consumers refuse an
  envelope whose tenant is not its routing key's, so a partner cannot speak for another
  tenant.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from crm_shared.errors import CrmError
from crm_shared.events import routing_key_for
from identity.settings import IdentitySettings


class BrokerUnavailable(CrmError):
    """The broker's management API did not do what was asked; nothing was kept."""

    code = "SERVICE_UNAVAILABLE"
    http_status = 503


@dataclass(frozen=True)
class BrokerAccess:
    """What a partner subscription owns on the broker."""

    user: str
    queue: str


def access_for(subscription_id: uuid.UUID) -> BrokerAccess:
    """The broker user and queue names of a subscription."""
    return BrokerAccess(user=f"partner-{subscription_id}", queue=f"partner.{subscription_id}")


def permissions(
    access: BrokerAccess,
    *,
    exchange: str,
    partner_exchange: str,
    tenant_id: uuid.UUID,
    event_types: list[str],
) -> dict[str, Any]:
    """The vhost and topic permissions of a partner user (see the module's docstring)."""
    queue = re.escape(access.queue)
    types = "|".join(re.escape(t) for t in event_types)
    tenant = re.escape(str(tenant_id))
    return {
        "vhost": {
            "configure": "^$",
            "write": f"^({re.escape(exchange)}|{queue})$",
            "read": f"^({re.escape(partner_exchange)}|{queue})$",
        },
        "topics": [
            {
                "exchange": partner_exchange,
                "write": "^$",
                "read": rf"^({types})\.{tenant}$",
            },
            {
                "exchange": exchange,
                "write": rf"^partner\.[a-z_]+\.reported\.v[0-9]+\.{tenant}$",
                "read": "^$",
            },
        ],
    }


class BrokerAdmin:
    """The management API of one vhost, with an administrator's credentials."""

    def __init__(
        self,
        *,
        url: str,
        user: str,
        password: str,
        vhost: str,
        exchange: str,
        partner_exchange: str,
        queue_max_length_bytes: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client_args: dict[str, Any] = {
            "base_url": url.rstrip("/") + "/api",
            "auth": (user, password),
            "timeout": 10.0,
            "transport": transport,
        }
        self.vhost = vhost
        self.exchange = exchange
        self.partner_exchange = partner_exchange
        self._max_bytes = queue_max_length_bytes

    def _path(self, *parts: str) -> str:
        return "/" + "/".join(quote(p, safe="") for p in parts)

    async def _call(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        body: Any = None,
        ok404: bool = False,
    ) -> httpx.Response | None:
        """The answer; None for a 404 when ``ok404``; BrokerUnavailable for any other refusal."""
        try:
            response = await client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"broker management API unreachable: {exc}") from None
        if response.status_code == 404 and ok404:
            return None
        if response.status_code >= 300:
            raise BrokerUnavailable(
                f"broker management API refused {method} {path}: {response.status_code}"
            )
        return response

    async def provision(
        self,
        access: BrokerAccess,
        *,
        password: str,
        tenant_id: uuid.UUID,
        event_types: list[str],
    ) -> None:
        """Create (idempotently) the user, its queue, bindings and permissions."""
        granted = permissions(
            access,
            exchange=self.exchange,
            partner_exchange=self.partner_exchange,
            tenant_id=tenant_id,
            event_types=event_types,
        )
        async with httpx.AsyncClient(**self._client_args) as client:
            await self._call(
                client,
                "PUT",
                self._path("exchanges", self.vhost, self.partner_exchange),
                {"type": "topic", "durable": True, "auto_delete": False, "arguments": {}},
            )
            await self._call(
                client,
                "PUT",
                self._path("queues", self.vhost, access.queue),
                {
                    "durable": True,
                    "auto_delete": False,
                    "arguments": {
                        "x-queue-type": "quorum",
                        "x-max-length-bytes": self._max_bytes,
                        "x-overflow": "drop-head",
                    },
                },
            )
            for event_type in event_types:
                await self._call(
                    client,
                    "POST",
                    self._path(
                        "bindings", self.vhost, "e", self.partner_exchange, "q", access.queue
                    ),
                    {"routing_key": routing_key_for(event_type, tenant_id), "arguments": {}},
                )
            await self._call(
                client,
                "PUT",
                self._path("users", access.user),
                {"password": password, "tags": ""},
            )
            await self._call(
                client,
                "PUT",
                self._path("permissions", self.vhost, access.user),
                granted["vhost"],
            )
            for topic in granted["topics"]:
                await self._call(
                    client,
                    "PUT",
                    self._path("topic-permissions", self.vhost, access.user),
                    topic,
                )

    async def reconcile(
        self, access: BrokerAccess, *, tenant_id: uuid.UUID, event_types: list[str]
    ) -> bool:
        """Bring an existing subscription's queue and user to what :meth:`provision` makes
        now, without creating either or touching the password: bindings of the queue to
        ``crm.events`` (subscriptions made before the partner exchange existed) are removed,
        the partner exchange bindings and the permissions are set again. False when the
        queue or the user is gone (a revocation under way): nothing is recreated."""
        granted = permissions(
            access,
            exchange=self.exchange,
            partner_exchange=self.partner_exchange,
            tenant_id=tenant_id,
            event_types=event_types,
        )
        async with httpx.AsyncClient(**self._client_args) as client:
            user = await self._call(client, "GET", self._path("users", access.user), ok404=True)
            bound = await self._call(
                client,
                "GET",
                self._path("queues", self.vhost, access.queue, "bindings"),
                ok404=True,
            )
            if user is None or bound is None:
                return False
            # Permissions first: the user loses read on crm.events before anything else.
            await self._call(
                client,
                "PUT",
                self._path("permissions", self.vhost, access.user),
                granted["vhost"],
            )
            for topic in granted["topics"]:
                await self._call(
                    client,
                    "PUT",
                    self._path("topic-permissions", self.vhost, access.user),
                    topic,
                )
            await self._call(
                client,
                "PUT",
                self._path("exchanges", self.vhost, self.partner_exchange),
                {"type": "topic", "durable": True, "auto_delete": False, "arguments": {}},
            )
            wanted = {routing_key_for(t, tenant_id) for t in event_types}
            have = set()
            for binding in bound.json():
                source, key = binding.get("source"), binding.get("routing_key")
                if source == self.partner_exchange and key in wanted:
                    have.add(key)
                elif source:  # any other exchange (crm.events), or a key no longer chosen
                    await self._call(
                        client,
                        "DELETE",
                        self._path(
                            "bindings",
                            self.vhost,
                            "e",
                            source,
                            "q",
                            access.queue,
                            binding["properties_key"],
                        ),
                        ok404=True,
                    )
            for key in sorted(wanted - have):
                done = await self._call(
                    client,
                    "POST",
                    self._path(
                        "bindings", self.vhost, "e", self.partner_exchange, "q", access.queue
                    ),
                    {"routing_key": key, "arguments": {}},
                    ok404=True,
                )
                if done is None:
                    return False
        return True

    async def bindings(self, queue: str, exchange: str) -> set[str]:
        """The routing keys ``queue`` is bound with to ``exchange`` (none if it is gone)."""
        async with httpx.AsyncClient(**self._client_args) as client:
            found = await self._call(
                client, "GET", self._path("queues", self.vhost, queue, "bindings"), ok404=True
            )
        if found is None:
            return set()
        return {b["routing_key"] for b in found.json() if b.get("source") == exchange}

    async def remove(self, access: BrokerAccess) -> None:
        """Delete the user (its permissions go with it; its connections are closed) and its
        queue (with the queue go its bindings and unread messages); what is gone stays gone."""
        async with httpx.AsyncClient(**self._client_args) as client:
            await self._call(client, "DELETE", self._path("users", access.user), ok404=True)
            await self._call(
                client,
                "DELETE",
                self._path("connections", "username", access.user),
                ok404=True,
            )
            await self._call(
                client, "DELETE", self._path("queues", self.vhost, access.queue), ok404=True
            )


def broker_admin(settings: IdentitySettings) -> BrokerAdmin:
    """The management API client of identity's vhost, from its settings."""
    return BrokerAdmin(
        url=settings.rabbitmq_management_url,
        user=settings.rabbitmq_management_user,
        password=settings.rabbitmq_management_password,
        vhost=settings.vhost,
        exchange=settings.exchange,
        partner_exchange=settings.partner_exchange,
        queue_max_length_bytes=settings.partner_queue_max_length_bytes,
    )
