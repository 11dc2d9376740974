"""OpenTelemetry for every process, configured by the standard ``OTEL_*`` variables.

Traces go to OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set,
to the console with ``OTEL_TRACES_EXPORTER=console``, and nowhere otherwise. Context travels
over HTTP in ``traceparent`` headers and over the broker in the event envelope.
Metrics (``crm_shared.metrics``) are served for Prometheus at ``GET /metrics``. Logs are one
JSON object a line (``LOG_FORMAT=json``, the default outside development) or plain text,
each with the trace and span ids of the span it was written in.
"""

from __future__ import annotations

import logging
import os
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False
_tracing = False


def tracing_enabled() -> bool:
    """Whether this process traces: ``OTEL_SDK_DISABLED`` is not ``true``. With the SDK
    disabled the instrumentations (a wrapper around every SQL statement, broker message and
    HTTP call) are not installed at all, rather than installed to make spans nobody records."""
    return _tracing


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


def configure_telemetry(service_name: str, *, environment: str | None = None) -> None:
    """Install the tracer and meter providers, the instrumentations and logging, once per process.

    ``environment`` (a ``ServiceSettings.environment``) picks the default log format.
    """
    global _configured, _tracing
    if _configured:
        return
    _configured = True
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    resource = Resource.create({"service.name": name})
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    _tracing = not disabled
    if _tracing:
        provider = TracerProvider(resource=resource)
        exporter = _exporter_from_env()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    # The reader registers with prometheus_client's registry, which /metrics renders.
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    )

    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    if _tracing:
        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
        AioPikaInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()
    # Log records carry otelTraceID / otelSpanID so logs join their trace.
    LoggingInstrumentor().instrument(set_logging_format=False)
    environment = environment or os.environ.get(f"{service_name.upper()}_ENVIRONMENT")
    configure_logging(name, environment=environment)


def configure_logging(
    service_name: str, *, environment: str | None = None, stream: Any = None
) -> logging.Handler:
    """Route the root logger to one handler on ``stream`` (stderr), as JSON or text.

    ``LOG_FORMAT`` (``json`` or ``text``) decides; without it, text in development and JSON
    elsewhere. ``LOG_LEVEL`` sets the level (INFO). Returns the installed handler.
    """
    environment = environment or os.environ.get("CRM_ENVIRONMENT", "development")
    fmt = os.environ.get("LOG_FORMAT") or ("text" if environment == "development" else "json")
    handler = logging.StreamHandler(stream)
    handler.addFilter(_TraceDefaults())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service_name))
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s [%(name)s] [trace_id=%(otelTraceID)s "
                "span_id=%(otelSpanID)s] %(message)s"
            )
        )
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[handler], force=True
    )
    return handler


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, service, logger, message, trace ids, exception."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _ids(record)
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service_name,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": trace_id,
            "span_id": span_id,
        }
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["exception"] = {
                "type": type(exc).__name__,
                "message": str(exc),
                "stacktrace": "".join(traceback.format_exception(*record.exc_info)),
            }
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


def _ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """The record's trace and span ids (hex), or None outside any span."""
    trace_id = getattr(record, "otelTraceID", "0")
    span_id = getattr(record, "otelSpanID", "0")
    if not isinstance(trace_id, str) or trace_id.strip("0") == "":
        # Not stamped by the instrumented record factory: ask the current span.
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None, None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")
    return trace_id, span_id


class _TraceDefaults(logging.Filter):
    """Records made outside the instrumented factory still format (with zero ids)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in ("otelTraceID", "otelSpanID"):
            if not hasattr(record, name):
                setattr(record, name, "0")
        return True


def instrument_app(app: Any) -> None:
    """Trace and measure every request of a FastAPI app; serve its metrics at ``/metrics``.

    Health probes and scrapes are neither traced nor measured.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from crm_shared.exposure import guarded_metrics
    from crm_shared.metrics import HttpMetricsMiddleware, metrics_endpoint

    app.router.add_route(
        "/metrics", guarded_metrics(metrics_endpoint), methods=["GET"], include_in_schema=False
    )
    app.add_middleware(HttpMetricsMiddleware)
    if not _tracing:
        return
    app.add_middleware(TraceResponseMiddleware)
    # Request metrics come from HttpMetricsMiddleware (route templates, seconds), not from here.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", meter_provider=NoOpMeterProvider()
    )


class TraceResponseMiddleware:
    """Answers every request with ``traceresponse: 00-<trace id>-<span id>-<flags>`` (W3C
    Trace Context level 2), so a caller or an operator can look the request's trace up."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_trace(message: Any) -> None:
            if message["type"] == "http.response.start":
                context = trace.get_current_span().get_span_context()
                if context.is_valid:
                    value = (
                        f"00-{context.trace_id:032x}-{context.span_id:016x}-"
                        f"{int(context.trace_flags):02x}"
                    )
                    headers = list(message.get("headers", []))
                    headers.append((b"traceresponse", value.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_trace)


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
