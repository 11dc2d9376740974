"""Logs are JSON lines that carry the service, level, logger, message, exception and the ids
of the span they were written in, so a log line leads to its trace."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crm_shared.telemetry import configure_logging


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was (configure_logging replaces its handlers)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_log_in_a_span_carries_its_trace_and_span_ids(
    root_logging: None, finished_spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    stream = io.StringIO()
    configure_logging("rewards", stream=stream)
    log = logging.getLogger("rewards.accounts")

    with trace.get_tracer(__name__).start_as_current_span("credit points") as span:
        log.warning("credited %d points", 5)
        try:
            raise ValueError("ledger mismatch")
        except ValueError:
            log.exception("could not credit")
    log.info("outside any span")

    context = span.get_span_context()
    # Only this test's logger: other loggers of the suite's process may write meanwhile.
    inside, failed, outside = [line for line in lines(stream) if line["logger"] == log.name]
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["service"] == "rewards"
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "rewards.accounts"
    assert inside["message"] == "credited 5 points"
    assert "exception" not in inside
    assert failed["trace_id"] == inside["trace_id"] and failed["level"] == "ERROR"
    exception = failed["exception"]
    assert isinstance(exception, dict)
    assert exception["type"] == "ValueError" and exception["message"] == "ledger mismatch"
    assert "raise ValueError" in exception["stacktrace"]
    assert outside["trace_id"] is None and outside["span_id"] is None
    assert "timestamp" in outside


@pytest.mark.parametrize(
    ("environment", "log_format", "is_json"),
    [
        ("development", None, False),
        ("production", None, True),
        ("test", None, True),
        ("development", "json", True),
        ("production", "text", False),
    ],
)
def test_log_format_is_json_outside_development_unless_log_format_says(
    root_logging: None,
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    log_format: str | None,
    is_json: bool,
) -> None:
    if log_format is None:
        monkeypatch.delenv("LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("LOG_FORMAT", log_format)
    stream = io.StringIO()
    configure_logging("identity", environment=environment, stream=stream)
    logging.getLogger("identity").warning("hello")
    line = stream.getvalue().strip()
    assert line.startswith("{") is is_json
    assert "hello" in line
