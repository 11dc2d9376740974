"""The guarded outbound client refuses internal addresses in every form, and connects to the
address it checked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from crm_shared.errors import BadUserInput
from crm_shared.outbound import OutboundPolicy, check_url, guarded_client

DENY_ALL = OutboundPolicy()

INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/",  # AWS/GCP/Azure metadata
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/admin",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://127.0.0.1:5432/",
    "http://127.1/",  # short form of 127.0.0.1
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://0x7f000001/",  # and in hexadecimal
    "http://0.0.0.0:15672/",
    "http://localhost:8001/graphql",
    "http://api.localhost/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254 mapped
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[fd00:ec2::254]/",  # AWS IMDS over IPv6
    "http://[fe80::1]/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_internal_urls_are_refused_at_registration(url: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        await check_url(url, DENY_ALL, field="input.url")
    assert refused.value.field == "input.url"
    assert "refused" in refused.value.message


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_internal_urls_are_refused_at_delivery(url: str) -> None:
    async with guarded_client(DENY_ALL, timeout=2) as client:
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.post(url, content=b"{}")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "http:///nohost", "https://user:pw@example.com/hook"]
)
async def test_urls_that_are_not_plain_http_are_refused(url: str) -> None:
    with pytest.raises(BadUserInput):
        await check_url(url, DENY_ALL, field="input.url")


async def test_a_public_address_and_a_name_that_does_not_resolve_yet_are_accepted() -> None:
    await check_url("https://8.8.8.8/hook", DENY_ALL, field="input.url")
    await check_url("https://partner.example/hook", DENY_ALL, field="input.url")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A plain HTTP server on 127.0.0.1 that records each request's head."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, seen


async def test_a_refused_delivery_never_reaches_the_server(
    receiver: tuple[int, list[bytes]],
) -> None:
    port, seen = receiver
    async with guarded_client(DENY_ALL, timeout=2) as client:
        for url in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"):
            with pytest.raises(httpx.ConnectError):
                await client.post(url, content=b"{}")
    assert seen == []


async def test_an_allowed_network_is_reached_at_the_address_checked_with_the_host_kept(
    receiver: tuple[int, list[bytes]],
) -> None:
    port, seen = receiver
    policy = OutboundPolicy.allowing(["127.0.0.1/32"])
    async with guarded_client(policy, timeout=2) as client:
        response = await client.post(f"http://localhost:{port}/hook", content=b"{}")
    assert response.status_code == 204
    assert len(seen) == 1
    assert f"host: localhost:{port}".encode() in seen[0].lower()
    # Only the network named is allowed: the same server over ::1 is not.
    async with guarded_client(policy, timeout=2) as client:
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.post(f"http://[::1]:{port}/hook", content=b"{}")
    assert len(seen) == 1


async def test_redirects_are_not_followed() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://169.254.169.254/\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, guarded_client(OutboundPolicy.allowing(["127.0.0.1/32"]), timeout=2) as c:
        response = await c.post(f"http://127.0.0.1:{port}/", content=b"{}")
    assert response.status_code == 307
    assert response.next_request is not None  # offered, never taken


def test_a_setting_that_is_not_a_network_fails_at_start() -> None:
    from crm_shared.settings import ServiceSettings

    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        ServiceSettings(outbound_allowed_networks=["not-a-network"])
