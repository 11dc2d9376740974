"""Writes ``definitions.json``: the broker's vhost, exchange, queues, policies and users.

``.venv/bin/python infra/rabbitmq/definitions.py > infra/rabbitmq/definitions.json``
(after adding a service, a handled event type, or changing retry delays or delivery limit).
Names and queue arguments come from the code (``crm_shared.events.topology`` and each
service's handler registry), so the definitions match what the services declare; a queue
declared with other arguments than the broker has would fail with PRECONDITION_FAILED.
Users have no password (``password_hash`` empty): set one per environment with
``rabbitmqctl change_password <user> <secret>`` and put it in the service's Secret.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from crm_shared.events.topology import QueueNames, binding_key
from crm_shared.settings import ServiceSettings

VHOST = "crm"
SERVICES = ("identity", "engagement", "rewards")
PARKED_MAX_BYTES = 1024**3
PARTNERS_ADMIN = "identity-partners"
# Queues bound per (type, tenant) at run time by their service, only where someone listens
# (identity.partners.fanout): declared here, never bound to ``#``.
BOUND_AT_RUN_TIME = ("identity.webhooks", "identity.partners")


def handled_event_types() -> dict[str, list[str]]:
    """The event types each consumer binds, from its handler registry: one per service, plus
    the further queues a service consumes (``<service>.<purpose>``, e.g. identity's webhook
    deliveries: ``#``, though those are bound per tenant at run time, see
    ``BOUND_AT_RUN_TIME``)."""
    from engagement.handlers import HANDLERS as engagement
    from identity.handlers import build_handlers as identity_handlers
    from identity.partners.feed import partner_feed, partner_handlers
    from identity.partners.handlers import webhook_handlers
    from identity.settings import IdentitySettings
    from rewards.handlers import build_handlers
    from rewards.settings import RewardsSettings

    registries: Mapping[str, Mapping[str, Any]] = {
        "identity": identity_handlers(IdentitySettings()),
        "engagement": engagement,
        "rewards": build_handlers(RewardsSettings()),
    }
    consumers = {service: sorted(registries[service]) for service in SERVICES}
    consumers["identity.webhooks"] = sorted(webhook_handlers(IdentitySettings()))
    consumers["identity.partners"] = sorted(partner_handlers(partner_feed(IdentitySettings())))
    return consumers


def _quorum(extra: Mapping[str, Any]) -> dict[str, Any]:
    # The same arguments as topology.declare_service_queues.
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        **extra,
    }


def _own(service: str) -> str:
    """A regex of the queue names of ``service`` (topology.QueueNames)."""
    return rf"{service}(\.[a-z_]+)?\.(events|parked|retry\.[0-9]+ms)"


def build_definitions() -> dict[str, Any]:
    """The definitions document (RabbitMQ's import format)."""
    defaults = ServiceSettings()
    exchange = defaults.exchange
    exchange_re = exchange.replace(".", r"\.")
    partner_exchange = _partner_exchange()
    partner_re = partner_exchange.replace(".", r"\.")
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for service, event_types in handled_event_types().items():
        if not event_types:
            continue  # no consumer: its queues would only collect copies nobody reads
        names = QueueNames(service)
        queues.append(_queue(names.parked, {"x-queue-type": "quorum"}))
        queues.append(
            _queue(
                names.events,
                _quorum(
                    {
                        "x-delivery-limit": defaults.delivery_limit,
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": names.parked,
                    }
                ),
            )
        )
        for delay in defaults.retry_delays_ms:
            queues.append(
                _queue(
                    names.retry(delay),
                    _quorum(
                        {
                            "x-message-ttl": delay,
                            "x-dead-letter-exchange": "",
                            "x-dead-letter-routing-key": names.events,
                        }
                    ),
                )
            )
        for event_type in event_types if service not in BOUND_AT_RUN_TIME else ():
            bindings.append(
                {
                    "source": exchange,
                    "vhost": VHOST,
                    "destination": names.events,
                    "destination_type": "queue",
                    "routing_key": binding_key(event_type),
                    "arguments": {},
                }
            )
    users = [_user(service) for service in SERVICES] + [
        _user("crm-ops", tags=["monitoring"]),
        # Identity provisions partner subscriptions through the management API with it
        # (IDENTITY_RABBITMQ_MANAGEMENT_USER): creating users needs the administrator tag.
        _user(PARTNERS_ADMIN, tags=["administrator"]),
    ]
    # Identity also declares the partner exchange and republishes there what partners may
    # see (identity.partners.feed).
    extra = {s: (rf"|{partner_re}" if s == "identity" else "") for s in SERVICES}
    permissions = [
        {
            # Declare the exchange and its own queues; publish events and forward to its own
            # retry/parked queues through the default exchange; consume its own queues.
            "user": service,
            "vhost": VHOST,
            "configure": rf"^({exchange_re}{extra[service]}|{_own(service)})$",
            "write": rf"^({exchange_re}{extra[service]}|amq\.default|{_own(service)})$",
            "read": rf"^({exchange_re}|{_own(service)})$",
        }
        for service in SERVICES
    ] + [
        {
            # Operators list and replay parked messages (crm_shared.events.parking).
            "user": "crm-ops",
            "vhost": VHOST,
            "configure": "^$",
            "write": r"^amq\.default$",
            "read": r"^[a-z_]+(\.[a-z_]+)?\.parked$",
        },
        {
            # Declares, binds (to the partner exchange) and deletes partner queues
            # (partner.<subscription id>) only; read on crm.events lets the reconciliation
            # remove bindings made there before the partner exchange existed.
            "user": PARTNERS_ADMIN,
            "vhost": VHOST,
            "configure": rf"^({partner_re}|partner\.[0-9a-f-]+)$",
            "write": r"^partner\.[0-9a-f-]+$",
            "read": rf"^({partner_re}|{exchange_re})$",
        },
    ]
    topic_permissions = [
        {
            # A service publishes only its own events: their types start with its name.
            "user": service,
            "vhost": VHOST,
            "exchange": exchange,
            "write": rf"^{service}\.",
            "read": ".*",
        }
        for service in SERVICES
    ] + [
        {
            # Identity republishes every service's events that pass partner_sharing.
            "user": "identity",
            "vhost": VHOST,
            "exchange": partner_exchange,
            "write": ".*",
            "read": "^$",
        }
    ]
    policies = [
        {
            "vhost": VHOST,
            "name": "crm-parked-bounded",
            "pattern": r"^[a-z_]+(\.[a-z_]+)?\.parked$",
            "apply-to": "queues",
            "priority": 10,
            # Bounded, and refusing rather than dropping: parking waits instead of losing.
            "definition": {"max-length-bytes": PARKED_MAX_BYTES, "overflow": "reject-publish"},
        },
        {
            "vhost": VHOST,
            "name": "crm-events-safety-net",
            "pattern": r"^[a-z_]+(\.[a-z_]+)?\.events$",
            "apply-to": "queues",
            "priority": 0,
            # The services declare these with arguments (which win); the policy covers a
            # queue declared by hand or by an older client without them.
            "definition": {
                "delivery-limit": defaults.delivery_limit,
                "dead-letter-strategy": "at-least-once",
                "overflow": "reject-publish",
            },
        },
    ]
    return {
        "rabbit_version": "3.10.0",
        "vhosts": [{"name": VHOST}],
        "users": users,
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "exchanges": [
            {
                "name": name,
                "vhost": VHOST,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in (exchange, partner_exchange)
        ],
        "queues": queues,
        "bindings": bindings,
        "policies": policies,
    }


def _partner_exchange() -> str:
    from identity.settings import IdentitySettings

    return IdentitySettings().partner_exchange


def _queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": VHOST,
        "durable": True,
        "auto_delete": False,
        "arguments": arguments,
    }


def _user(name: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "password_hash": "",
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": tags or [],
    }


def render() -> str:
    """The JSON text of the definitions, as committed."""
    return json.dumps(build_definitions(), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
