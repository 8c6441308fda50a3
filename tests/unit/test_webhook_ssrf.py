"""The SSRF guard: which URLs may be endpoints, after DNS resolution (a fake resolver here)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from services.webhooks.ssrf import Resolver, UrlGuard, UrlNotAllowedError, address_refusal

PUBLIC = "93.184.215.14"


def resolver(names: dict[str, list[str]]) -> Resolver:
    """A DNS of these names; an address resolves to itself, anything else to nothing."""

    async def resolve(host: str, port: int) -> list[str]:  # noqa: ARG001 - the resolver's signature
        if host in names:
            return names[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"{host} does not resolve") from None

    return resolve


def guard(names: dict[str, list[str]] | None = None, *, allow_loopback: bool = False) -> UrlGuard:
    return UrlGuard(allow_loopback=allow_loopback, resolve=resolver(names or {}))


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.100.100.200", "metadata"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - refused, not bound
        ("240.0.0.1", "reserved"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),
        ("2002:a00:1::1", "private"),
        ("192.0.2.10", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    refusal = address_refusal(address, allow_loopback=False)

    assert refusal is not None
    assert why in refusal


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address, allow_loopback=False) is None


async def test_a_public_https_url_is_allowed() -> None:
    target = await guard({"hooks.example.com": [PUBLIC]}).check("https://hooks.example.com/otc")

    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)


@pytest.mark.parametrize(
    "url",
    ["https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/"],
)
async def test_urls_naming_a_private_link_local_or_metadata_address_are_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowedError):
        await guard(allow_loopback=True).check(url)


async def test_a_host_name_resolving_to_a_private_address_is_refused() -> None:
    names = {"internal.example.com": ["10.1.2.3"]}

    with pytest.raises(UrlNotAllowedError, match=r"internal\.example\.com resolves to a private"):
        await guard(names).check("https://internal.example.com/hook")


async def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    names = {"mixed.example.com": [PUBLIC, "192.168.0.7"]}

    with pytest.raises(UrlNotAllowedError):
        await guard(names).check("https://mixed.example.com/hook")


async def test_loopback_is_refused_unless_the_setting_allows_it() -> None:
    names = {"localhost": ["127.0.0.1", "::1"]}

    for url in ("http://127.0.0.1:8610/hook", "https://localhost/hook", "http://localhost:8610/"):
        with pytest.raises(UrlNotAllowedError, match="loopback"):
            await guard(names).check(url)
    assert (await guard(names, allow_loopback=True).check("http://localhost:8610/")).port == 8610


async def test_plain_http_is_refused_for_anything_but_loopback() -> None:
    names = {"hooks.example.com": [PUBLIC]}

    with pytest.raises(UrlNotAllowedError, match="https"):
        await guard(names, allow_loopback=True).check("http://hooks.example.com/hook")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/", "https"),
        ("https://user:password@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/#fragment", "fragment"),
        ("https:///path-only", "no host"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://unknown.example.com/", "does not resolve"),
        ("https://hooks.example.com/" + "a" * 2100, "longer"),
    ],
)
async def test_urls_of_the_wrong_shape_are_refused(url: str, why: str) -> None:
    with pytest.raises(UrlNotAllowedError, match=why):
        await guard({"hooks.example.com": [PUBLIC]}).check(url)


async def test_a_resolver_that_hangs_refuses_in_bounded_time() -> None:
    async def hangs(host: str, port: int) -> list[str]:  # noqa: ARG001
        await asyncio.sleep(10)
        return [PUBLIC]

    slow = UrlGuard(allow_loopback=False, resolve=hangs, resolve_seconds=0.05)

    with pytest.raises(UrlNotAllowedError, match="does not resolve"):
        await slow.check("https://slow.example.com/")
