"""``OTEL_SDK_DISABLED=true`` turns tracing off entirely: no wrapper around each SQL statement,
broker message or HTTP call, and no trace headers on responses; without it, both are there."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import asyncpg, fastapi
from fastapi.testclient import TestClient
from crm_shared.telemetry import configure_telemetry, instrument_app, tracing_enabled
configure_telemetry("probe")
app = fastapi.FastAPI()
@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}
instrument_app(app)
wrapped = hasattr(asyncpg.connection.Connection.execute, "__wrapped__")
header = "traceresponse" in TestClient(app).get("/ping").headers
print(tracing_enabled(), wrapped, header)
"""


def probe(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | env
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("\n")[-2]


def test_disabled_sdk_installs_no_instrumentation() -> None:
    assert probe(OTEL_SDK_DISABLED="true") == "False False False"


def test_tracing_by_default_wraps_statements_and_answers_traceresponse() -> None:
    assert probe() == "True True True"
