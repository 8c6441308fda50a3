"""The live rate the console shows beside an order's indicative rate: the provider's price for
the order's pair and size now, kept a few seconds so that a queue refreshing itself every few
seconds asks the provider at most once per order in that time. It is for the operator's eyes
only: an approval at the live rate is priced again by the engine, as over the API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from domain.money import Currency
from services.adapters.ports import PricingPort, UpstreamError

log = logging.getLogger("otc.gateway.console")

KEPT_SECONDS = 4.0


@dataclass(frozen=True)
class Pair:
    source_currency: Currency
    destination_currency: Currency
    source_amount: Decimal


class LiveRates:
    def __init__(
        self,
        pricing: PricingPort,
        *,
        kept_seconds: float = KEPT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pricing = pricing
        self._kept_seconds = kept_seconds
        self._clock = clock
        self._kept: dict[Pair, tuple[float, asyncio.Task[Decimal | None]]] = {}

    async def rate(self, pair: Pair) -> Decimal | None:
        """The provider's rate now, or None when it cannot be had (shown as unavailable). Pages
        asking at once (the queue and its refresh, two operators) share one provider call."""
        now = self._clock()
        kept = self._kept.get(pair)
        if kept is None or now - kept[0] >= self._kept_seconds:
            self._kept = {p: k for p, k in self._kept.items() if now - k[0] < self._kept_seconds}
            kept = (now, asyncio.ensure_future(self._ask(pair)))
            self._kept[pair] = kept
        return await asyncio.shield(kept[1])

    async def _ask(self, pair: Pair) -> Decimal | None:
        try:
            price = await self._pricing.price(
                source_currency=pair.source_currency,
                destination_currency=pair.destination_currency,
                source_amount=pair.source_amount,
                idempotency_key=uuid.uuid4(),
            )
        except UpstreamError as error:
            log.warning("console: no live rate: %s", type(error).__name__)
            return None
        return price.rate

    async def rates(self, pairs: list[Pair]) -> list[Decimal | None]:
        return list(await asyncio.gather(*(self.rate(pair) for pair in pairs)))
