"""OpenTelemetry for every process, configured by the standard ``OTEL_*`` variables.

Traces go to OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set,
to the console with ``OTEL_TRACES_EXPORTER=console``, and nowhere otherwise. Context travels
over HTTP in ``traceparent`` headers and over the broker in the event envelope.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False


def _exporter_from_env() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER")
    if choice is None:
        has_endpoint = any(
            os.environ.get(name)
            for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        choice = "otlp" if has_endpoint else "none"
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if choice == "console":
        return ConsoleSpanExporter()
    return None


def configure_telemetry(service_name: str) -> None:
    """Install the tracer provider and the library instrumentations, once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    exporter = _exporter_from_env()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    AioPikaInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    # Log records carry otelTraceID / otelSpanID so logs join their trace.
    LoggingInstrumentor().instrument(set_logging_format=False)
    handler = logging.StreamHandler()
    handler.addFilter(_TraceDefaults())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s [%(name)s] [trace_id=%(otelTraceID)s "
            "span_id=%(otelSpanID)s] %(message)s"
        )
    )
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), handlers=[handler])


class _TraceDefaults(logging.Filter):
    """Records made outside the instrumented factory still format (with zero ids)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in ("otelTraceID", "otelSpanID"):
            if not hasattr(record, name):
                setattr(record, name, "0")
        return True


def instrument_app(app: Any) -> None:
    """Trace every request of a FastAPI app (health probes excluded)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")


def current_traceparent() -> dict[str, str]:
    """The W3C trace context of the current span, as carrier headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: dict[str, str]) -> Context:
    """The trace context carried by headers or an event envelope."""
    return propagate.extract(carrier)


def shutdown_telemetry() -> None:
    """Flush spans still buffered; called when a process stops."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
