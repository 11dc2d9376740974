"""Outbound HTTP to addresses a tenant chose (webhooks, connectors): one guarded client.

A URL a tenant gives could point the service at its own network: the cloud's metadata
endpoint, the database, the broker's management API, another service's internals. Every
request therefore resolves its host, refuses it when any of its addresses is loopback,
private, link-local, shared (CGNAT), multicast, reserved or unspecified (IPv4, IPv6, and IPv4
carried in IPv6: mapped, 6to4, NAT64), and then connects to the very address it checked, so a
second DNS answer cannot swap in another one (DNS rebinding). Redirects are never followed,
and proxies from the environment are not used. Networks can be allowed only by an explicit
setting (``outbound_allowed_networks``: tests and ``make run`` deliver to 127.0.0.1).

``check_url`` applies the same rules when a URL is registered, so a bad one is refused at once
with the offending field; a host that does not resolve yet is accepted there (it may exist
later) and checked again at every request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from crm_shared.errors import BadUserInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that mean "this machine" or "the platform's internals" whatever they resolve to.
_REFUSED_NAMES = ("localhost", "metadata", "metadata.google.internal", "metadata.goog")
_REFUSED_SUFFIXES = (".localhost", ".internal", ".local")
# Ranges Python's ``is_private`` and friends do not cover.
_EXTRA_REFUSED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("100.64.0.0/10"),  # shared address space (carrier-grade NAT)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(Exception):
    """The request would reach an address outbound HTTP may not reach."""


class Unresolvable(RefusedAddress):
    """The host does not resolve (now): nothing to reach, nothing to check yet."""


@dataclass(frozen=True)
class OutboundPolicy:
    """What outbound HTTP may reach: public addresses, and ``allowed`` networks besides."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> OutboundPolicy:
        """A policy allowing ``networks`` (CIDR strings, e.g. ``127.0.0.1/32``) besides."""
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        if any(address in network for network in self.allowed):
            return None
        for embedded in _embedded_ipv4(address):
            if self.refusal(embedded) is not None and not any(
                embedded in network for network in self.allowed
            ):
                return f"{address} carries the internal address {embedded}"
        if address.is_loopback:
            return f"{address} is a loopback address"
        if address.is_unspecified:
            return f"{address} is the unspecified address"
        if address.is_link_local:
            return f"{address} is link-local (cloud metadata lives there)"
        if address.is_multicast:
            return f"{address} is a multicast address"
        if address.is_private or any(address in network for network in _EXTRA_REFUSED):
            return f"{address} is a private address"
        if address.is_reserved:
            return f"{address} is a reserved address"
        return None

    def name_refusal(self, host: str) -> str | None:
        """Why the host name itself may not be reached (``localhost``, ``*.internal``…)."""
        name = host.rstrip(".").lower()
        if name in _REFUSED_NAMES or name.endswith(_REFUSED_SUFFIXES):
            return f"{host} names an internal host"
        return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one carries (mapped, 6to4, NAT64, Teredo's server)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (numeric forms such as ``2130706433`` included)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_addresses(host: str, port: int, policy: OutboundPolicy) -> list[IPAddress]:
    """``host``'s addresses when every one may be reached; else :class:`RefusedAddress`."""
    name_refusal = policy.name_refusal(host) if _literal(host) is None else None
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError) as exc:
        if name_refusal is not None:
            raise RefusedAddress(name_refusal) from None
        raise Unresolvable(f"{host} does not resolve: {exc}") from None
    if not addresses:
        raise Unresolvable(f"{host} does not resolve")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise RefusedAddress(reason)
    if name_refusal is not None and not all(
        any(address in network for network in policy.allowed) for address in addresses
    ):
        raise RefusedAddress(name_refusal)
    return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every request's destination and connects to the
    address it checked (the Host header and TLS server name stay the URL's)."""

    def __init__(self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport | None = None):
        self._policy = policy
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            addresses = await checked_addresses(host, port, self._policy)
        except RefusedAddress as exc:
            raise httpx.ConnectError(f"refused: {exc}", request=request) from None
        pinned = addresses[0]
        if _literal(host) is None:
            request.url = request.url.copy_with(host=str(pinned))
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_client(
    policy: OutboundPolicy, *, timeout: float, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """The one client outbound HTTP goes through: guarded, no redirects, no env proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )


ALLOWED_SCHEMES: Sequence[str] = ("https", "http")


async def check_url(url: str, policy: OutboundPolicy, *, field: str) -> None:
    """Refuse (BAD_USER_INPUT on ``field``) a URL outbound HTTP could not or may not reach.

    A host that does not resolve now is accepted: every request checks it again.
    """
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES or not parts.hostname:
        raise BadUserInput(f"{field}: an http(s) URL with a host is needed", field=field)
    if parts.username or parts.password:
        raise BadUserInput(f"{field}: credentials in the URL are not allowed", field=field)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadUserInput(f"{field}: the port is not a number in range", field=field) from None
    try:
        await checked_addresses(parts.hostname, port, policy)
    except Unresolvable:
        return
    except RefusedAddress as exc:
        raise BadUserInput(f"{field}: refused, {exc}", field=field) from None
