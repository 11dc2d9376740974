"""Limits before parsing (crm_shared.http.RequestLimits): body size and JSON depth, read from
the bytes so that no parser ever recurses into a hostile body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_shared.http import RequestLimits, raw_json_depth
from crm_shared.validation import check_stored_json, json_depth


def _nested(levels: int, kinds: str = "[{") -> Any:
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if kinds[level % len(kinds)] == "[" else {"k": value}
    return value


@pytest.mark.parametrize("levels", [0, 1, 2, 63, 64, 65, 300])
def test_the_depth_read_from_bytes_is_the_parsed_depth_up_to_the_limit(levels: int) -> None:
    body = json.dumps({"variables": _nested(levels)}).encode()
    expected = json_depth(json.loads(body))

    measured = raw_json_depth(body, stop_at=64)

    assert measured > 64 if expected > 64 else measured <= 64


def test_brackets_inside_strings_neither_hide_nor_add_depth() -> None:
    # A string "]" after each "[" would cancel the nesting if strings were not cut out.
    hiding = b'["]",' * 200 + b"1" + b"]" * 200
    noisy = json.dumps({"text": "[[[[{{{{" * 100, "escaped": '\\"[[['}).encode()

    assert raw_json_depth(hiding, stop_at=64) > 64
    assert raw_json_depth(noisy, stop_at=64) <= 64


def _app(**limits: Any) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"received": len(await request.body())})

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])
    return RequestLimits(app, **limits)  # type: ignore[return-value]


async def test_bodies_over_the_limit_answer_413_and_deep_json_400_with_a_coded_body() -> None:
    app = _app(max_body_bytes=1000, max_json_depth=8, path_limits={"/big/": 5000, "/stream": None})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        large = await http.post("/graphql", content=b"x" * 1001)
        deep = await http.post("/graphql", json=_nested(9))
        deep_text = await http.post(
            "/graphql", content=json.dumps(_nested(9)), headers={"content-type": "text/plain"}
        )
        fine = await http.post(
            "/graphql", content=json.dumps(_nested(7)), headers={"content-type": "application/json"}
        )
        bigger_route = await http.post("/big/x", content=b"x" * 4000)
        streamed = await http.post("/stream", content=b"x" * 100_000)

    assert (large.status_code, large.json()["errors"][0]["extensions"]["code"]) == (
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert (deep.status_code, deep.json()["errors"][0]["extensions"]["code"]) == (
        400,
        "BAD_REQUEST",
    )
    assert deep_text.json() == {"received": len(json.dumps(_nested(9)))}
    assert fine.json() == {"received": len(json.dumps(_nested(7)))}
    assert bigger_route.json() == {"received": 4000}
    assert streamed.json() == {"received": 100_000}


def test_stored_json_is_bounded_in_depth_and_size() -> None:
    check_stored_json(_nested(10))
    with pytest.raises(ValueError, match="deeper than 10"):
        check_stored_json(_nested(11))
    with pytest.raises(ValueError, match="4000 characters"):
        check_stored_json({"k": "x" * 4001})
