"""The liquidity provider sandbox's arithmetic (seed 004 fee policies) and its moving market."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.local.sandbox.pricing import (
    DEFAULT_CURRENCIES,
    FeePolicy,
    MidPrices,
    client_rate,
    quote_amounts,
    round_up,
)

FEE_BPS = Decimal(10)
FEE = FEE_BPS / 10_000

# Amounts with 2 places (EUR) and rates with 9 places around EUR -> USDC.
eur_amounts = st.integers(1, 10**11).map(lambda cents: Decimal(cents).scaleb(-2))
usdc_amounts = st.integers(10**4, 10**15).map(lambda micros: Decimal(micros).scaleb(-6))
rates = st.integers(5 * 10**8, 2 * 10**9).map(lambda units: Decimal(units).scaleb(-9))


def places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


@given(amount=eur_amounts, rate=rates)
def test_exclusive_sells_the_whole_amount_and_charges_the_fee_on_top(
    amount: Decimal, rate: Decimal
) -> None:
    quote = quote_amounts(
        amount=amount,
        amount_is_sell=True,
        fee_policy=FeePolicy.EXCLUSIVE,
        rate=rate,
        fee_bps=FEE_BPS,
        source_places=2,
        target_places=6,
    )

    assert quote.source == amount
    assert quote.fee == round_up(amount * FEE, 2)
    assert quote.target <= amount * rate < quote.target + Decimal("0.000001")
    assert (places(quote.source), places(quote.fee), places(quote.target)) == (2, 2, 6)


@given(amount=eur_amounts, rate=rates)
def test_inclusive_takes_the_fee_out_of_the_amount(amount: Decimal, rate: Decimal) -> None:
    quote = quote_amounts(
        amount=amount,
        amount_is_sell=True,
        fee_policy=FeePolicy.INCLUSIVE,
        rate=rate,
        fee_bps=FEE_BPS,
        source_places=2,
        target_places=6,
    )

    assert quote.source + quote.fee == amount
    assert quote.fee >= quote.source * FEE
    assert quote.fee <= round_up(quote.source * FEE, 2) + Decimal("0.01")
    assert quote.target <= quote.source * rate < quote.target + Decimal("0.000001")


@given(amount=usdc_amounts, rate=rates)
def test_exclusive_amount_in_the_buy_currency_is_bought_exactly(
    amount: Decimal, rate: Decimal
) -> None:
    quote = quote_amounts(
        amount=amount,
        amount_is_sell=False,
        fee_policy=FeePolicy.EXCLUSIVE,
        rate=rate,
        fee_bps=FEE_BPS,
        source_places=2,
        target_places=6,
    )

    assert quote.target == amount
    assert quote.source * rate >= amount > (quote.source - Decimal("0.01")) * rate
    assert quote.fee == round_up(quote.source * FEE, 2)


@given(amount=usdc_amounts, rate=rates)
def test_inclusive_amount_in_the_buy_currency_includes_the_fee(
    amount: Decimal, rate: Decimal
) -> None:
    quote = quote_amounts(
        amount=amount,
        amount_is_sell=False,
        fee_policy=FeePolicy.INCLUSIVE,
        rate=rate,
        fee_bps=FEE_BPS,
        source_places=2,
        target_places=6,
    )

    assert quote.source + quote.fee == round_up(amount / rate, 2)
    assert quote.target <= amount
    assert quote.target <= quote.source * rate


def test_client_rate_is_below_the_mid_by_half_the_spread_to_ten_digits() -> None:
    assert client_rate(Decimal("1.08"), Decimal(20)) == Decimal("1.078920000")
    assert client_rate(Decimal(60_000), Decimal(20)) == Decimal("59940.00000")


def test_same_seed_walks_the_same_prices() -> None:
    first = MidPrices(DEFAULT_CURRENCIES, seed=7)
    second = MidPrices(DEFAULT_CURRENCIES, seed=7)
    walked = []
    for _ in range(20):
        first.step()
        second.step()
        walked.append(first.mid("EUR", "USDC"))
        assert first.mid("EUR", "USDC") == second.mid("EUR", "USDC")

    assert len(set(walked)) > 1


def test_prices_move_but_stay_near_their_anchor() -> None:
    market = MidPrices(DEFAULT_CURRENCIES, seed=4)
    for _ in range(5_000):
        market.step()

    assert Decimal("1.05") < market.mid("EUR", "USDC") < Decimal("1.11")
    assert Decimal(50_000) < market.mid("BTC", "USD") < Decimal(70_000)


def test_zero_volatility_freezes_the_market() -> None:
    market = MidPrices(DEFAULT_CURRENCIES, seed=4, volatility_scale=Decimal(0))
    market.step()

    assert market.mid("EUR", "USDC") == Decimal("1.08")
