"""The event catalogue, generated from the code's event models: a JSON Schema per event type
(the CloudEvents envelope with ``data`` as the model's schema) and an AsyncAPI 3.0 document.

``python -m crm_shared.events.catalogue identity engagement rewards`` (``make catalogue``)
imports every module of the named service packages, builds their handler registries (some
event classes are made per service by a factory), walks the subclasses of
:class:`~crm_shared.events.envelope.Event` and writes ``docs/events/``. For each type the
producer's model is described: the one defined in the package of the service the type is
named after (``identity.customer.registered.v1`` -> ``identity``), else the shared one; a
consumer's tolerant reading of another service's event never is.

The schemas are published at :data:`~crm_shared.events.envelope.SCHEMA_BASE` (each one's
``$id``, and the ``dataschema`` of every envelope carrying that type).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from crm_shared.events.envelope import SCHEMA_BASE, Event
from crm_shared.settings import ServiceSettings

DRAFT = "https://json-schema.org/draft/2020-12/schema"
CONTENT_TYPE = "application/cloudevents+json"
AMQP_BINDING_VERSION = "0.3.0"
PARTNER_PREFIX = "partner."
# Where partner queues are bound: identity republishes there what passes partner_sharing
# (identity's ``IDENTITY_PARTNER_EXCHANGE``; a test keeps the two equal).
PARTNER_EXCHANGE = "crm.partners"


def _subclasses(root: type[Event]) -> Iterator[type[Event]]:
    for sub in root.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _event_type(cls: type[Event]) -> str | None:
    value = getattr(cls, "type", None)
    return value if isinstance(value, str) else None


def import_services(packages: Iterable[str]) -> None:
    """Import every module of ``packages`` and build their handler registries."""
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(info.name)
        handlers = importlib.import_module(f"{name}.handlers")
        build = getattr(handlers, "build_handlers", None)
        if callable(build):
            settings = _settings_class(importlib.import_module(f"{name}.settings"))
            build(settings())


def _settings_class(module: Any) -> type[ServiceSettings]:
    for _, value in inspect.getmembers(module, inspect.isclass):
        if issubclass(value, ServiceSettings) and value is not ServiceSettings:
            found: type[ServiceSettings] = value
            return found
    raise LookupError(f"{module.__name__} defines no ServiceSettings subclass")


def _preference(cls: type[Event], event_type: str) -> tuple[int, int, str]:
    producer = event_type.split(".", 1)[0]
    module = cls.__module__
    if module == producer or module.startswith(f"{producer}."):
        home = 0
    elif module.startswith("crm_shared."):
        home = 1
    else:
        home = 2
    # Among the producer's own classes, the fullest model is the one it publishes.
    return (home, -len(cls.model_fields), f"{module}.{cls.__qualname__}")


def producer_models(packages: Sequence[str]) -> dict[str, type[Event]]:
    """Each event type the services of ``packages`` publish, with the model that describes it."""
    import_services(packages)
    candidates: dict[str, list[type[Event]]] = {}
    for cls in _subclasses(Event):
        event_type = _event_type(cls)
        if event_type is not None:
            candidates.setdefault(event_type, []).append(cls)
    producers = set(packages) | {"crm_shared"}
    models = {}
    for event_type, classes in candidates.items():
        best = min(classes, key=lambda c: _preference(c, event_type))
        if is_partner_fact(event_type):
            # Partners publish these; the consuming service's model is what it accepts.
            models[event_type] = best
            continue
        if _preference(best, event_type)[0] == 2:
            continue  # only consumers model it: a contract to come, not a published event
        if event_type.split(".", 1)[0] in producers:
            models[event_type] = best
    return dict(sorted(models.items()))


def is_partner_fact(event_type: str) -> bool:
    """Whether partners publish ``event_type`` (``partner.<fact>.reported.v<n>``) to us."""
    return event_type.startswith(PARTNER_PREFIX)


def schema_uri(event_type: str) -> str:
    """Where the JSON Schema of ``event_type`` is published (the envelope's ``dataschema``)."""
    return f"{SCHEMA_BASE}/{event_type}.json"


def event_schema(model: type[Event]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a CloudEvent carrying ``model`` as its data."""
    data = model.model_json_schema(mode="serialization")
    defs = data.pop("$defs", {})
    event_type = model.type
    return {
        "$schema": DRAFT,
        "$id": schema_uri(event_type),
        "title": event_type,
        "description": (inspect.getdoc(model) or event_type).splitlines()[0],
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "datacontenttype",
            "dataschema",
            "tenantid",
            "data",
        ],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid", "description": "Unique per event."},
            "source": {
                "type": "string",
                "format": "uri-reference",
                "description": "The producing service.",
            },
            "type": {"const": event_type},
            "subject": {
                "type": "string",
                "description": "The customer's (or the aggregate's) id.",
            },
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"const": schema_uri(event_type)},
            "tenantid": {
                "type": "string",
                "format": "uuid",
                "description": "The tenant (extension attribute).",
            },
            "traceparent": {
                "type": "string",
                "description": "W3C trace context (extension attribute).",
            },
            "tracestate": {"type": "string"},
            "data": data,
        },
        **({"$defs": defs} if defs else {}),
    }


def _exchange_binding(name: str) -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {
            "name": name,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "crm",
        },
        "bindingVersion": AMQP_BINDING_VERSION,
    }


def asyncapi_document(
    models: Mapping[str, type[Event]], *, exchange: str, partner_exchange: str = PARTNER_EXCHANGE
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the catalogue (one channel and message per event type):
    what partners receive is on ``partner_exchange``, what they send on ``exchange``."""
    bindings = {
        True: _exchange_binding(exchange),
        False: _exchange_binding(partner_exchange),
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, model in models.items():
        doc = inspect.getdoc(model) or event_type
        messages[event_type] = {
            "name": event_type,
            "title": model.__name__,
            "summary": doc.splitlines()[0],
            "contentType": CONTENT_TYPE,
            "payload": {"$ref": f"./schemas/{event_type}.json"},
            "bindings": {
                "amqp": {"messageType": event_type, "bindingVersion": AMQP_BINDING_VERSION},
            },
        }
        sends = is_partner_fact(event_type)
        channels[event_type] = {
            "address": f"{event_type}.{{tenantId}}",
            "title": event_type,
            "parameters": {"tenantId": {"$ref": "#/components/parameters/tenantId"}},
            "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
            "bindings": {"amqp": bindings[sends]},
        }
        operations[f"{'send' if sends else 'receive'}.{event_type}"] = {
            "action": "send" if sends else "receive",
            "summary": (
                f"A partner publishes {event_type} with its own tenant's routing key."
                if sends
                else f"A partner's queue receives {event_type} of its tenant."
            ),
            "channel": {"$ref": f"#/channels/{event_type}"},
            "messages": [{"$ref": f"#/channels/{event_type}/messages/{event_type}"}],
            "bindings": {
                "amqp": {"ack": True, "deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}
            },
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:social-crm:events",
        "info": {
            "title": "Social CRM events",
            "version": "1.0.0",
            "description": (
                "Every state change the Social CRM services publish, as CloudEvents 1.0"
                " (structured JSON) on the topic exchange `" + exchange + "`. Partners receive"
                " them on `" + partner_exchange + "`, where identity republishes only what"
                " passes consent purpose partner_sharing (an event about a customer only while"
                " that customer's consent stands granted), and publish their facts to `"
                + exchange
                + "`. The routing key is `<type>.<tenant id>`; a partner's broker user may"
                " bind its queue only to its own tenant's keys. Each message's payload is the"
                " JSON Schema published"
                f" at {SCHEMA_BASE}/<type>.json (draft 2020-12). Generated by"
                " `make catalogue`; do not edit."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "production": {
                "host": "broker.social-crm.dev:5671",
                "protocol": "amqps",
                "protocolVersion": "0-9-1",
                "pathname": "/crm",
                "description": "The broker; vhost `crm`. Credentials per partner subscription.",
                "security": [{"$ref": "#/components/securitySchemes/partnerUser"}],
            },
            "local": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "pathname": "/crm",
                "description": "`make run`'s broker.",
                "security": [{"$ref": "#/components/securitySchemes/partnerUser"}],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "parameters": {
                "tenantId": {
                    "description": "The tenant's id; a partner may use only its own.",
                },
            },
            "securitySchemes": {
                "partnerUser": {
                    "type": "userPassword",
                    "description": "The broker user and password of createPartnerSubscription.",
                },
            },
        },
    }


def render(
    models: Mapping[str, type[Event]], *, exchange: str, partner_exchange: str = PARTNER_EXCHANGE
) -> dict[str, str]:
    """The catalogue's files (paths relative to ``docs/events``) and their text."""
    files = {
        f"schemas/{event_type}.json": json.dumps(event_schema(model), indent=2) + "\n"
        for event_type, model in models.items()
    }
    files["asyncapi.yaml"] = "# Generated by `make catalogue`; do not edit.\n" + yaml.safe_dump(
        asyncapi_document(models, exchange=exchange, partner_exchange=partner_exchange),
        sort_keys=False,
        width=100,
    )
    return files


def write(out: Path, files: Mapping[str, str]) -> None:
    """Replace the catalogue in ``out`` with ``files`` (schemas of removed types go)."""
    schemas = out / "schemas"
    schemas.mkdir(parents=True, exist_ok=True)
    for stale in schemas.glob("*.json"):
        if f"schemas/{stale.name}" not in files:
            stale.unlink()
    for name, text in files.items():
        (out / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("packages", nargs="+", help="the service packages, e.g. identity")
    parser.add_argument("--out", type=Path, default=Path("docs/events"))
    args = parser.parse_args(argv)
    models = producer_models(args.packages)
    write(args.out, render(models, exchange=ServiceSettings().exchange))
    sys.stderr.write(f"{len(models)} event types written to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
