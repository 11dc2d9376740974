"""The trace of an event survives the relay: the traceparent is stored with the outbox row,
so a relay process started after the change was committed (a restart, a deploy, another
replica) still publishes the event into the producer's trace, and the consumer joins it."""

from __future__ import annotations

import subprocess
import sys

import aio_pika
import asyncpg
import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crm_shared import devstack
from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from tests.support.factories import make_customer, make_tenant
from tests.support.waiting import eventually


async def test_the_consumer_span_is_in_the_producers_trace_after_a_relay_restart(
    isolated: devstack.Stack,
    identity_db: Database,
    finished_spans: InMemorySpanExporter,
    amqp: aio_pika.abc.AbstractRobustConnection,
    rewards_consumer: EventConsumer,
) -> None:
    tenant_id = await make_tenant(identity_db)
    # The producer: a request that registers a customer, while no relay is running.
    with trace.get_tracer(__name__).start_as_current_span("POST /graphql") as request:
        customer = await make_customer(identity_db, tenant_id, name="Traced")
    trace_id = format(request.get_span_context().trace_id, "032x")

    dsn = isolated.database_url("identity")
    conn = await asyncpg.connect(dsn)
    try:
        stored = await conn.fetchval(
            "SELECT envelope::text FROM identity.outbox "
            "WHERE envelope->>'subject' = $1 AND published_at IS NULL",
            str(customer.id),
        )
    finally:
        await conn.close()
    assert stored is not None, "the event waits in the outbox"
    traceparent = orjson.loads(stored)["traceparent"]
    assert traceparent.split("-")[1] == trace_id, "the row carries the producer's trace"

    # The relay comes up afterwards, in a process of its own, and publishes the row.
    relay = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ops.relay_once",
            dsn,
            f"amqp://guest:guest@127.0.0.1:5672/{isolated.vhost}",
            "identity",
        ],
        cwd=devstack.REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert relay.returncode == 0, relay.stdout + relay.stderr

    def consumer_spans() -> list[str]:
        return [
            s.name
            for s in finished_spans.get_finished_spans()
            if s.context is not None and format(s.context.trace_id, "032x") == trace_id
        ]

    async def spans() -> list[str]:
        return consumer_spans()

    found = await eventually(
        spans, lambda names: "identity.customer.registered.v1 process" in names, timeout=20
    )
    assert any(name.startswith("handle ") for name in found), found
