"""Every service says it is alive and whether its dependencies are reachable."""

from __future__ import annotations

import httpx
import pytest

from crm_shared import devstack


@pytest.mark.parametrize("service", ["gateway", *devstack.SUBGRAPHS])
async def test_every_service_is_alive_and_ready(stack: devstack.Stack, service: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        alive = await client.get(stack.url(service, "/healthz"))
        ready = await client.get(stack.url(service, "/readyz"))
    assert alive.status_code == 200
    assert ready.status_code == 200, ready.text
    if service != "gateway":
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
