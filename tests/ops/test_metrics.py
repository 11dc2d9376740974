"""Each service serves Prometheus metrics at /metrics: requests by route, method and status,
the outbox backlog, and what its consumer did with each message."""

from __future__ import annotations

import uuid

import aio_pika
import asyncpg
import httpx
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.requests import Request

from crm_shared import devstack
from crm_shared import metrics as crm_metrics
from crm_shared.db import Database
from crm_shared.events import Envelope, Event
from crm_shared.events.consumer import EventConsumer, Handler, registry
from crm_shared.events.outbox import record_event
from crm_shared.events.relay import OutboxRelay
from crm_shared.events.topology import declare_exchange
from crm_shared.metrics import metrics_endpoint, watch_outbox
from rewards.accounts import service as ledger
from tests.conftest import ADMIN_DSN, settings_for
from tests.e2e.conftest import REGISTER
from tests.support.auth import staff_token
from tests.support.waiting import eventually

Samples = dict[str, list[Sample]]
# Bounds that hold on a loaded machine (they cost nothing when things are quick): a scrape
# refreshes the outbox readings first, and events and the ledger check come within seconds.
HTTP_TIMEOUT = 30
WAIT = 60


def parse(text: str) -> Samples:
    """Samples by metric family name."""
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


async def scrape(stack: devstack.Stack, service: str) -> Samples:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        response = await client.get(stack.url(service, "/metrics"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, family: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` of ``family`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples.get(family, [])
        if s.name == name and labels.items() <= s.labels.items()
    )


def requests(samples: Samples, route: str, status: str = "200") -> float:
    return value(
        samples,
        "http_server_request_duration_seconds",
        "http_server_request_duration_seconds_count",
        http_route=route,
        http_request_method="POST",
        http_response_status_code=status,
    )


async def test_every_service_counts_its_requests_by_route_method_and_status(
    stack: devstack.Stack, tenant_id: str
) -> None:
    token = await staff_token(stack, tenant_id)
    before = {s: await scrape(stack, s) for s in ("gateway", *devstack.SUBGRAPHS)}

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        response = await client.post(
            stack.url("gateway", "/graphql"),
            json={"query": REGISTER, "variables": {"input": {"name": "Metered"}}},
            headers={"authorization": f"Bearer {token}"},
        )
    assert "errors" not in response.json(), response.text
    # The answer names its trace, to look it up in the trace backend.
    version, trace_id, span_id, _flags = response.headers["traceresponse"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16

    after = {s: await scrape(stack, s) for s in ("gateway", *devstack.SUBGRAPHS)}
    for service in ("gateway", "identity"):
        assert requests(after[service], "/graphql") >= requests(before[service], "/graphql") + 1
    # The latency histogram has its buckets; probes and scrapes are not counted.
    buckets = [
        s
        for s in after["gateway"]["http_server_request_duration_seconds"]
        if s.name.endswith("_bucket")
    ]
    assert {s.labels["le"] for s in buckets} >= {"0.1", "1.0", "+Inf"}
    routes = {s.labels["http_route"] for s in buckets}
    assert "/graphql" in routes and "/metrics" not in routes and "/readyz" not in routes
    # Unknown paths share one label value instead of one series per path.
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        await client.post(stack.url("rewards", f"/no-such-{uuid.uuid4().hex}"))
    unmatched = await scrape(stack, "rewards")
    assert requests(unmatched, "unmatched", "404") >= 1
    # Every process says which service it is.
    for service, samples in after.items():
        assert samples["target_info"][0].labels["service_name"] == service


async def test_outbox_backlog_and_age_are_gauges_per_service_schema(
    stack: devstack.Stack,
) -> None:
    for service in devstack.SUBGRAPHS:
        samples = await scrape(stack, service)
        backlog = [s for s in samples["crm_outbox_backlog"] if s.labels["schema"] == service]
        age = [s for s in samples["crm_outbox_oldest_age_seconds"] if s.labels["schema"] == service]
        assert len(backlog) == 1 and backlog[0].value >= 0
        assert len(age) == 1 and age[0].value >= 0
    assert "crm_outbox_backlog" not in await scrape(stack, "gateway")


class Metered(Event):
    type = "test.metered.recorded.v1"
    n: int


async def test_the_outbox_backlog_rises_with_pending_rows_and_falls_once_they_are_published(
    in_process_metrics: None,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    """The gauges as /metrics renders them: three committed events are three more pending
    rows, with an age; once a relay has published them the backlog is 0 and so is the age."""

    async def outbox() -> tuple[float, float]:
        response = await metrics_endpoint(Request({"type": "http"}))
        assert isinstance(response.body, bytes)
        samples = parse(response.body.decode())
        return (
            value(samples, "crm_outbox_backlog", "crm_outbox_backlog", schema="rewards"),
            value(
                samples,
                "crm_outbox_oldest_age_seconds",
                "crm_outbox_oldest_age_seconds",
                schema="rewards",
            ),
        )

    watch_outbox(rewards_db.dsn, "rewards")
    channel = await amqp.channel(publisher_confirms=True)
    # Published where nothing is bound: the rows' fate is all that is observed here.
    exchange = await channel.declare_exchange(
        f"test.metered.{uuid.uuid4().hex[:8]}", aio_pika.ExchangeType.TOPIC, auto_delete=True
    )
    try:
        pending_before, _ = await outbox()
        async with rewards_db.session() as session, session.begin():
            for n in range(3):
                await record_event(session, Metered(n=n), tenant_id=uuid.uuid4(), subject=None)
        pending, age = await outbox()
        assert pending == pending_before + 3
        assert age > 0

        relay = OutboxRelay(dsn=rewards_db.dsn, schema="rewards", exchange=exchange)
        conn = await asyncpg.connect(rewards_db.dsn)
        try:
            while await relay.publish_batch(conn):
                pass
        finally:
            await conn.close()
        assert await outbox() == (0, 0)
    finally:
        await channel.close()
        # Later scrapes in this process watch no outbox again.
        crm_metrics._refreshers.pop("outbox:rewards", None)
        crm_metrics._outbox.pop("rewards", None)


async def test_the_rewards_consumer_counts_handled_messages_and_times_its_handlers(
    stack: devstack.Stack, tenant_id: str
) -> None:
    token = await staff_token(stack, tenant_id)
    event_type = "identity.customer.registered.v1"
    family = "crm_consumer_messages_handled"
    before = value(await scrape(stack, "rewards"), family, f"{family}_total", event_type=event_type)

    body = await devstack.graphql(stack, REGISTER, {"input": {"name": "Counted"}}, token=token)
    assert "errors" not in body, body

    async def handled() -> float:
        samples = await scrape(stack, "rewards")
        return value(samples, family, f"{family}_total", event_type=event_type)

    await eventually(handled, lambda n: n >= before + 1, timeout=WAIT)
    samples = await scrape(stack, "rewards")
    timings = [
        s
        for s in samples["crm_consumer_handler_duration_seconds"]
        if s.name.endswith("_count") and s.labels["event_type"] == event_type
    ]
    assert timings and all(s.labels["outcome"] == "ok" for s in timings)
    assert any("welcome_registered_customer" in s.labels["handler"] for s in timings)


class MeteredFailure(Event):
    type = "test.metered.failed.v1"
    n: int


async def test_failed_retried_and_parked_messages_are_counted(
    in_process_metrics: None,
    rewards_db: Database,
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    async def fails(event: MeteredFailure, **_: object) -> None:
        raise RuntimeError("metered failure")

    consumer = EventConsumer(
        service=f"metered{uuid.uuid4().hex[:8]}",
        database=rewards_db,
        handlers=registry(Handler(MeteredFailure, fails)),
        retry_delays_ms=[50],
        delivery_limit=5,
        prefetch=10,
    )
    await consumer.start(amqp, "crm.events")
    try:
        channel = await amqp.channel()
        exchange = await declare_exchange(channel, "crm.events")
        envelope = Envelope.wrap(
            MeteredFailure(n=1),
            source="/tests",
            tenant_id=uuid.uuid4(),
            subject=None,
            trace_headers={},
        )
        await exchange.publish(
            aio_pika.Message(envelope.to_json(), message_id=str(envelope.id), type=envelope.type),
            routing_key=envelope.routing_key,
        )
        # Not an envelope of ours: parked at once, for its own reason.
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", message_id="junk", type=MeteredFailure.type),
            routing_key=consumer.names.events,
        )

        def count(name: str, **labels: str) -> float:
            samples = parse(generate_latest(REGISTRY).decode())
            return value(samples, name, f"{name}_total", event_type=MeteredFailure.type, **labels)

        async def parked() -> float:
            return count("crm_consumer_messages_parked", reason="attempts_exhausted")

        await eventually(parked, lambda n: n == 1, timeout=WAIT)
        assert count("crm_consumer_messages_failed") == 2  # the first attempt and the retry
        assert count("crm_consumer_messages_retried", attempt="1") == 1
        assert count("crm_consumer_messages_parked", reason="invalid_envelope") == 1
        assert count("crm_consumer_messages_handled") == 0
    finally:
        await consumer.stop()


async def test_the_ledger_check_reports_a_broken_invariant_and_its_repair(
    stack: devstack.Stack,
) -> None:
    """A cached balance that no longer equals its postings shows in rewards' metrics."""

    def problems(samples: Samples) -> float:
        return value(samples, "rewards_ledger_problems", "rewards_ledger_problems")

    tenant, customer = uuid.uuid4(), uuid.uuid4()
    db = Database(settings_for(stack, "rewards"))
    try:
        async with db.session() as session, session.begin():
            account = await ledger.open_account(
                session=session, tenant_id=tenant, customer_id=customer
            )
            await ledger.earn(
                session,
                tenant_id=tenant,
                customer_id=customer,
                points=10,
                reason="metered",
                idempotency_key=f"request:{uuid.uuid4()}",
                actor="staff:test",
            )
    finally:
        await db.dispose()
    await eventually(lambda: scrape(stack, "rewards"), lambda s: problems(s) == 0, timeout=WAIT)
    checked = value(
        await scrape(stack, "rewards"),
        "rewards_ledger_checked_timestamp_seconds",
        "rewards_ledger_checked_timestamp_seconds",
    )
    assert checked > 0

    # Only a superuser can do this: the service's own writes keep the balance with its postings.
    admin = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{stack.database}")
    bump = "UPDATE rewards.accounts SET balance = balance + $2 WHERE id = $1"
    try:
        await admin.execute(bump, account.id, 1)
        # Two problems: the balance differs from its postings, and from its lots.
        await eventually(lambda: scrape(stack, "rewards"), lambda s: problems(s) == 2, timeout=WAIT)
    finally:
        await admin.execute(bump, account.id, -1)
        await admin.close()
    await eventually(lambda: scrape(stack, "rewards"), lambda s: problems(s) == 0, timeout=WAIT)
