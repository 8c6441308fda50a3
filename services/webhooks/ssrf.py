"""Which URLs may be webhook endpoints, and which addresses the dispatcher may connect to.

A customer's URL must not make the platform call into its own network (server-side request
forgery). So a URL is https (plain http only for loopback receivers, and only where
`OTC_WEBHOOK_ALLOW_LOOPBACK` allows them, as in the local run), carries no credentials, and its
host resolves only to public addresses: never private (RFC 1918), loopback (unless allowed),
link-local, carrier-grade NAT, multicast, unspecified, reserved, IPv6 unique-local or link-local,
an IPv4 address hidden in IPv6 (mapped, 6to4, NAT64) that is any of those, or a cloud metadata
address. One refused address refuses the URL.

The gateway checks at registration; the dispatcher checks again at every connection, through
`GuardedBackend`, and connects to the very address it checked, so a DNS answer that changes
between the two (DNS rebinding) is caught too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpcore

MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses it resolves to."""

METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlNotAllowedError(ValueError):
    """This URL may not be a webhook endpoint (the message says why, for the customer)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why the dispatcher may not connect to `address`, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    for embedded in _embedded_ipv4(ip):
        refusal = address_refusal(str(embedded), allow_loopback=allow_loopback)
        if refusal is not None:
            return refusal
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    checks: tuple[tuple[bool, str], ...] = (
        (ip in METADATA, "a cloud metadata address"),
        (ip.is_link_local, "a link-local address"),
        (ip in CARRIER_GRADE_NAT, "a carrier-grade NAT address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def _embedded_ipv4(ip: IPAddress) -> Iterable[ipaddress.IPv4Address]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    found = [ip.ipv4_mapped, ip.sixtofour]
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return [address for address in found if address is not None]


def parse_endpoint_url(url: str) -> Target:
    """The URL's scheme, host and port, or UrlNotAllowedError for a URL of the wrong shape."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowedError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlNotAllowedError(f"not a valid URL: {error}") from None
    if parts.scheme not in {"https", "http"}:
        raise UrlNotAllowedError("the URL must be https")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowedError("the URL may not carry credentials")
    if parts.fragment:
        raise UrlNotAllowedError("the URL may not have a fragment")
    host = _host_of(parts)
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80))


def _host_of(parts: SplitResult) -> str:
    host = parts.hostname
    if not host:
        raise UrlNotAllowedError("the URL names no host")
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlNotAllowedError("the URL's host is not a valid host name") from None


async def resolve_with_loop(host: str, port: int) -> list[str]:
    """The host's addresses, from the event loop's resolver."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class UrlGuard:
    def __init__(
        self,
        *,
        allow_loopback: bool,
        resolve: Resolver = resolve_with_loop,
        resolve_seconds: float = RESOLVE_SECONDS,
    ) -> None:
        self.allow_loopback = allow_loopback
        self._resolve = resolve
        self._resolve_seconds = resolve_seconds

    async def check(self, url: str) -> Target:
        """Refuse (UrlNotAllowedError) a URL that may not be an endpoint, now."""
        target = parse_endpoint_url(url)
        await self.addresses(target.host, target.port, plain_http=target.scheme == "http")
        return target

    async def addresses(self, host: str, port: int, *, plain_http: bool) -> list[str]:
        """The addresses `host` resolves to, when every one of them may be connected to."""
        try:
            async with asyncio.timeout(self._resolve_seconds):
                found = await self._resolve(host, port)
        except (OSError, TimeoutError):
            raise UrlNotAllowedError(f"the host {host} does not resolve") from None
        if not found:
            raise UrlNotAllowedError(f"the host {host} does not resolve")
        for address in found:
            refusal = address_refusal(address, allow_loopback=self.allow_loopback)
            if refusal is not None:
                where = f"the address {host} is" if _is_address(host) else f"{host} resolves to"
                raise UrlNotAllowedError(f"{where} {refusal}")
            if plain_http and not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
                raise UrlNotAllowedError("the URL must be https")
        if plain_http and not self.allow_loopback:
            raise UrlNotAllowedError("the URL must be https")
        return found


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard allows: the host of
    each new connection is resolved, checked and connected to by address (TLS still names the
    host). `plain_http` is the backend of the http pool: loopback receivers only."""

    def __init__(self, guard: UrlGuard, *, plain_http: bool) -> None:
        self._guard = guard
        self._plain_http = plain_http
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._guard.addresses(host, port, plain_http=self._plain_http)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # noqa: S101 - addresses is never empty
        raise failure

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002 - httpcore's signature
        timeout: float | None = None,  # noqa: ARG002, ASYNC109 - httpcore's signature
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise UrlNotAllowedError("webhooks are not delivered to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
