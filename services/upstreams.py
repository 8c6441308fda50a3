"""Builds the pricing and wallet-balance ports a process uses, fake or over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.adapters.fakes import FakePricing, FakeWalletBalances
from services.adapters.ports import PricingPort, WalletBalancePort
from services.settings import Settings


@asynccontextmanager
async def open_upstreams(
    settings: Settings,
) -> AsyncIterator[tuple[PricingPort, WalletBalancePort]]:
    if settings.upstreams == "fake":
        yield FakePricing(), FakeWalletBalances()
        return
    raise NotImplementedError("sandbox upstreams arrive with the money-movement adapters")
