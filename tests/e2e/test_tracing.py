"""One trace: the gateway request, the identity subgraph, its SQL, the outbox publish and the
rewards consumer's handling of the event share one trace id."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Callable

import orjson

from crm_shared import devstack
from tests.e2e.conftest import REGISTER
from tests.support.auth import staff_token
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.waiting import eventually


async def test_registration_is_one_trace_across_gateway_services_sql_and_broker(
    stack: devstack.Stack, otlp: OtlpReceiver, tenant_id: str
) -> None:
    trace_id = uuid.uuid4().hex
    # The client starts the trace, as an instrumented front end would.
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    # urllib, not httpx: an instrumented httpx in this process would replace our traceparent.
    request = urllib.request.Request(
        stack.url("gateway", "/graphql"),
        data=orjson.dumps({"query": REGISTER, "variables": {"input": {"name": "Traced"}}}),
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {await staff_token(stack, tenant_id)}",
            "traceparent": traceparent,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = orjson.loads(response.read())
    assert "errors" not in body, body

    expected: list[Callable[[ReceivedSpan], bool]] = [
        lambda s: s.service == "gateway",
        lambda s: s.service == "identity" and s.name.startswith("POST /graphql"),
        lambda s: s.service == "identity" and "INSERT" in s.name.upper(),
        lambda s: s.service == "identity" and s.name == "identity.customer.registered.v1 publish",
        lambda s: s.service == "rewards" and s.name == "identity.customer.registered.v1 process",
        lambda s: s.service == "rewards" and s.name.startswith("handle "),
    ]

    def has_everything(spans: list[ReceivedSpan]) -> bool:
        return all(any(check(s) for s in spans) for check in expected)

    async def spans() -> list[ReceivedSpan]:
        return otlp.trace(trace_id)

    found = await eventually(spans, has_everything, timeout=20)
    services = {s.service for s in found}
    assert {"gateway", "identity", "rewards"} <= services
