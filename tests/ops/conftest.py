"""Fixtures of the operations tests: the e2e tenant, and this process's own telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crm_shared.db import Database
from crm_shared.events.consumer import EventConsumer
from rewards.handlers import build_handlers
from rewards.settings import RewardsSettings
from tests.e2e.conftest import tenant_id

__all__ = ["tenant_id"]


@pytest.fixture(scope="session")
def in_process_metrics() -> None:
    """Instruments used in this process (consumers driven in-process) report to Prometheus'
    default registry, as in a service (unless a service app built here already did it)."""
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))


@pytest.fixture(scope="session")
def finished_spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process ends from now on, kept in memory."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
async def rewards_consumer(
    rewards_db: Database, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[EventConsumer]:
    """Rewards' consumer with its real handlers, consuming the isolated vhost."""
    consumer = EventConsumer(
        service="rewards",
        database=rewards_db,
        handlers=build_handlers(RewardsSettings(welcome_points=100)),
        retry_delays_ms=[100, 200],
        delivery_limit=5,
        prefetch=50,
    )
    await consumer.start(amqp, "crm.events")
    yield consumer
    await consumer.stop()
