"""Builds the ports to the outside parties that a process uses: in-process fakes, or the HTTP
adapters pointed at the sandboxes (or, in production, at the real parties)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from services.adapters.bank import HttpLedger
from services.adapters.chain import HttpChain
from services.adapters.fakes import FakePricing, FakeWalletBalances
from services.adapters.http import RetryPolicy, upstream_client
from services.adapters.ports import ChainPort, LedgerPort, PricingPort, WalletBalancePort
from services.adapters.provider import HttpProviderPricing
from services.settings import Settings


@asynccontextmanager
async def open_upstreams(
    settings: Settings,
) -> AsyncIterator[tuple[PricingPort, WalletBalancePort]]:
    """Pricing and live wallet balances: for the engine, which prices, and for the gateway,
    which shows live wallet balances and, in its operator console, the live rate beside an
    order's indicative one (the engine prices again on approval)."""
    if settings.upstreams == "fake":
        yield FakePricing(), FakeWalletBalances()
        return
    retry = RetryPolicy.from_settings(settings)
    async with AsyncExitStack() as stack:
        provider = upstream_client(
            settings.provider_url,
            timeout_seconds=settings.upstream_timeout_seconds,
            bearer_token=settings.provider_token,
        )
        stack.push_async_callback(provider.aclose)
        chain = upstream_client(
            settings.chain_url, timeout_seconds=settings.upstream_timeout_seconds
        )
        stack.push_async_callback(chain.aclose)
        yield HttpProviderPricing(provider, retry=retry), HttpChain(chain, retry=retry)


@asynccontextmanager
async def open_money_movers(settings: Settings) -> AsyncIterator[tuple[LedgerPort, ChainPort]]:
    """The EUR ledger and the USDC chain, for the workers (always over HTTP)."""
    retry = RetryPolicy.from_settings(settings)
    async with AsyncExitStack() as stack:
        bank = upstream_client(settings.bank_url, timeout_seconds=settings.upstream_timeout_seconds)
        stack.push_async_callback(bank.aclose)
        chain = upstream_client(
            settings.chain_url, timeout_seconds=settings.upstream_timeout_seconds
        )
        stack.push_async_callback(chain.aclose)
        yield HttpLedger(bank, retry=retry), HttpChain(chain, retry=retry)
