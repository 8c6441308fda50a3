"""The liquidity provider's market and arithmetic, pure (no I/O): a moving mid price per currency
and the amounts of a quote.

Mid prices are kept in USD per unit and move by a seeded random walk, one step per quote, with a
pull back towards each currency's anchor so that they wander but stay near it (EUR about 1.08
USD, so EUR -> USDC about 1.08). A pair's mid is the ratio of the two.

A quote's rate is the mid less half the spread, rounded down to 10 significant digits. The fee is
`fee_bps` of the amount sold, charged in the sell currency. Every rounding favours the provider:
amounts received by the client are rounded down, amounts the client pays are rounded up.

- amount in the sell currency, EXCLUSIVE (the default): the amount is sold and the fee comes on
  top: `source = amount`, `fee = ceil(source x fee)`, `target = floor(source x rate)`;
- amount in the sell currency, INCLUSIVE: the fee comes out of the amount: `source + fee = amount`
  with `source = floor(amount / (1 + fee))`, `target = floor(source x rate)`;
- amount in the buy currency, EXCLUSIVE: exactly that amount is bought:
  `target = amount`, `source = ceil(amount / rate)`, `fee = ceil(source x fee)` on top;
- amount in the buy currency, INCLUSIVE: the amount is worth `gross = ceil(amount / rate)` of the
  sell currency, fee included: `source + fee = gross`, `target = floor(source x rate)` (below the
  amount by the fee).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

BPS = Decimal(10_000)
RATE_SIGNIFICANT_DIGITS = 10
# A step draws an integer in [-STEP_RESOLUTION, STEP_RESOLUTION]: no float touches a price.
STEP_RESOLUTION = 1000
MEAN_REVERSION = Decimal("0.05")


class FeePolicy(StrEnum):
    INCLUSIVE = "INCLUSIVE"
    EXCLUSIVE = "EXCLUSIVE"


@dataclass(frozen=True)
class CurrencySpec:
    places: int
    usd_anchor: Decimal
    volatility_bps: Decimal
    """Largest move of one step, in basis points of the price."""


DEFAULT_CURRENCIES: Mapping[str, CurrencySpec] = {
    "USD": CurrencySpec(places=2, usd_anchor=Decimal(1), volatility_bps=Decimal(0)),
    "EUR": CurrencySpec(places=2, usd_anchor=Decimal("1.08"), volatility_bps=Decimal(5)),
    "USDC": CurrencySpec(places=6, usd_anchor=Decimal(1), volatility_bps=Decimal(1)),
    "USDT": CurrencySpec(places=6, usd_anchor=Decimal(1), volatility_bps=Decimal(1)),
    "BTC": CurrencySpec(places=8, usd_anchor=Decimal(60_000), volatility_bps=Decimal(20)),
}


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def round_down(value: Decimal, places: int) -> Decimal:
    return value.quantize(quantum(places), rounding=ROUND_FLOOR)


def round_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(quantum(places), rounding=ROUND_CEILING)


class MidPrices:
    """Seeded random walk of every currency's USD price; `volatility_scale` multiplies each
    currency's own volatility (0 freezes the market)."""

    def __init__(
        self,
        currencies: Mapping[str, CurrencySpec],
        *,
        seed: int,
        volatility_scale: Decimal = Decimal(1),
    ) -> None:
        self._currencies = currencies
        self._scale = volatility_scale
        self._draws = random.Random(seed)  # noqa: S311 - a simulated market, not security
        self._usd = {code: spec.usd_anchor for code, spec in currencies.items()}

    def step(self) -> None:
        for code, spec in self._currencies.items():
            price = self._usd[code]
            draw = Decimal(self._draws.randint(-STEP_RESOLUTION, STEP_RESOLUTION))
            move = price * draw * spec.volatility_bps * self._scale / (BPS * STEP_RESOLUTION)
            pull = (spec.usd_anchor - price) * MEAN_REVERSION
            self._usd[code] = price + move + pull

    def mid(self, sell: str, buy: str) -> Decimal:
        """Units of `buy` per unit of `sell`."""
        return self._usd[sell] / self._usd[buy]


def client_rate(mid: Decimal, spread_bps: Decimal) -> Decimal:
    """The mid less half the spread, rounded down to RATE_SIGNIFICANT_DIGITS digits."""
    rate = mid * (1 - spread_bps / (2 * BPS))
    exponent = rate.adjusted() - (RATE_SIGNIFICANT_DIGITS - 1)
    return rate.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_FLOOR)


@dataclass(frozen=True)
class QuoteAmounts:
    source: Decimal
    target: Decimal
    fee: Decimal


def quote_amounts(  # noqa: PLR0913 - the four inputs of seed 004 plus the two currencies' places
    *,
    amount: Decimal,
    amount_is_sell: bool,
    fee_policy: FeePolicy,
    rate: Decimal,
    fee_bps: Decimal,
    source_places: int,
    target_places: int,
) -> QuoteAmounts:
    """The amounts of a quote (see the module docstring); the caller checks they are positive."""
    fee_rate = fee_bps / BPS
    if amount_is_sell:
        gross = amount
    else:
        needed = round_up(amount / rate, source_places)
        if fee_policy is FeePolicy.EXCLUSIVE:
            return QuoteAmounts(
                source=needed,
                target=amount,
                fee=round_up(needed * fee_rate, source_places),
            )
        gross = needed
    if fee_policy is FeePolicy.EXCLUSIVE:
        source = gross
        fee = round_up(source * fee_rate, source_places)
    else:
        source = round_down(gross / (1 + fee_rate), source_places)
        fee = gross - source
    return QuoteAmounts(source=source, target=round_down(source * rate, target_places), fee=fee)
