from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.errors import DomainError, ErrorCode
from domain.money import (
    RATE_PLACES,
    Currency,
    check_size,
    convert,
    normalise_rate,
    parse_amount,
    round_down,
    slippage_bps,
)
from tests.unit.strategies import (
    LARGEST_RATE,
    amounts,
    currencies,
    decimals_of_any_shape,
    has_at_most_places,
    is_exact_to_currency,
    places_of,
    rates,
)


def exact_product(source_amount: Decimal, fee: Decimal, rate: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 200
        return (source_amount - fee) * rate


def test_eur_has_two_places_and_usdc_six() -> None:
    assert (Currency.EUR.places, Currency.EUR.quantum) == (2, Decimal("0.01"))
    assert (Currency.USDC.places, Currency.USDC.quantum) == (6, Decimal("0.000001"))


# ---------------------------------------------------------------- parse_amount


@given(value=decimals_of_any_shape(), currency=currencies, as_text=st.booleans())
def test_parse_amount_accepts_exactly_positive_amounts_within_the_currency_places(
    value: Decimal, currency: Currency, *, as_text: bool
) -> None:
    acceptable = value > 0 and has_at_most_places(value, currency.places) and value < 10**15
    written: str | Decimal = str(value) if as_text else value

    if not acceptable:
        with pytest.raises(DomainError) as refusal:
            parse_amount(written, currency, field="sourceAmount")
        assert (refusal.value.code, refusal.value.field) == (
            ErrorCode.VALIDATION_ERROR,
            "sourceAmount",
        )
        return
    parsed = parse_amount(written, currency, field="sourceAmount")
    assert parsed == value
    assert is_exact_to_currency(parsed, currency)


@given(currency=currencies, data=st.data())
def test_parse_amount_returns_exactly_the_currency_places_whatever_the_input_exponent(
    currency: Currency, data: st.DataObject
) -> None:
    amount = data.draw(amounts(currency))
    written = data.draw(
        st.sampled_from([amount.normalize(), amount, amount.quantize(Decimal(10) ** -9)])
    )

    parsed = parse_amount(str(written), currency, field="sourceAmount")

    assert parsed == amount
    assert places_of(parsed) == currency.places


@pytest.mark.parametrize(
    "text", ["", "abc", "1,00", "NaN", "sNaN", "Infinity", "-Infinity", "0", "0.00", "-0.01", "-5"]
)
def test_parse_amount_refuses_what_is_not_a_positive_number(text: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_amount(text, Currency.EUR, field="sourceAmount")

    assert refused.value.code is ErrorCode.VALIDATION_ERROR
    assert refused.value.status == 422


@pytest.mark.parametrize(
    ("text", "currency"),
    [("0.001", Currency.EUR), ("10.005", Currency.EUR), ("1.0000001", Currency.USDC)],
)
def test_parse_amount_refuses_more_places_than_the_currency_has_instead_of_rounding(
    text: str, currency: Currency
) -> None:
    with pytest.raises(DomainError, match="decimal places") as refused:
        parse_amount(text, currency, field="sourceAmount")

    assert refused.value.code is ErrorCode.VALIDATION_ERROR


def test_parse_amount_accepts_trailing_zeros_beyond_the_currency_places() -> None:
    assert str(parse_amount("12.3400", Currency.EUR, field="sourceAmount")) == "12.34"


def test_parse_amount_refuses_amounts_of_fifteen_integer_digits() -> None:
    assert parse_amount("999999999999999.99", Currency.EUR, field="x") == Decimal(
        "999999999999999.99"
    )
    with pytest.raises(DomainError, match="too large"):
        parse_amount("1000000000000000", Currency.EUR, field="x")


@pytest.mark.parametrize(
    "text", ["0.999999999999999999999999999999", "1.0000000000000000000000000001"]
)
def test_parse_amount_refuses_amounts_longer_than_the_decimal_context(text: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_amount(text, Currency.EUR, field="sourceAmount")

    assert refused.value.code is ErrorCode.VALIDATION_ERROR


# ---------------------------------------------------------------- check_size


@pytest.mark.parametrize("amount", [Decimal("10.00"), Decimal("500.00"), Decimal("1000.00")])
def test_check_size_accepts_amounts_within_the_limits_inclusive(amount: Decimal) -> None:
    check_size(amount, Currency.EUR, Decimal(10), Decimal(1000), field="sourceAmount")


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (Decimal("9.99"), ErrorCode.AMOUNT_BELOW_MINIMUM),
        (Decimal("1000.01"), ErrorCode.AMOUNT_ABOVE_MAXIMUM),
    ],
)
def test_check_size_refuses_amounts_outside_the_limits(amount: Decimal, code: ErrorCode) -> None:
    with pytest.raises(DomainError) as refused:
        check_size(amount, Currency.EUR, Decimal(10), Decimal(1000), field="sourceAmount")

    assert refused.value.code is code
    assert refused.value.field == "sourceAmount"
    assert refused.value.status == 422


# ---------------------------------------------------------------- convert and round_down


@given(source=currencies, destination=currencies, data=st.data())
def test_convert_rounds_down_never_exceeding_the_exact_product(
    source: Currency, destination: Currency, data: st.DataObject
) -> None:
    source_amount = data.draw(amounts(source))
    fee = data.draw(
        st.sampled_from([Decimal(0).quantize(source.quantum), source_amount])
        | amounts(source, maximum=source_amount)
    )
    rate = data.draw(rates())

    converted = convert(source_amount, fee, rate, destination)

    exact = exact_product(source_amount, fee, rate)
    with localcontext(prec=200):
        cut_off = exact - converted
    assert converted <= exact
    assert cut_off < destination.quantum
    assert converted >= 0


@given(source=currencies, destination=currencies, data=st.data())
def test_convert_gives_exactly_the_destination_places(
    source: Currency, destination: Currency, data: st.DataObject
) -> None:
    source_amount = data.draw(amounts(source))
    fee = data.draw(amounts(source, maximum=source_amount))
    rate = data.draw(rates() | st.integers(1, 1000).map(Decimal))

    converted = convert(source_amount, fee, rate, destination)

    assert places_of(converted) == destination.places
    assert is_exact_to_currency(converted, destination)


def test_convert_rounds_a_fraction_of_a_cent_down() -> None:
    assert convert(
        Decimal("100.000000"), Decimal("0.000000"), Decimal("0.9199999"), Currency.EUR
    ) == (Decimal("91.99"))
    assert convert(Decimal("1000.00"), Decimal("1.50"), Decimal("1.0812345678"), Currency.USDC) == (
        Decimal("1079.612715")
    )


def test_convert_never_exceeds_the_exact_product_of_a_large_amount() -> None:
    source_amount = parse_amount("100000000010000.000001", Currency.USDC, field="sourceAmount")
    rate = normalise_rate(Decimal("0.9999999999"))

    converted = convert(source_amount, Decimal("0.000000"), rate, Currency.EUR)

    assert converted <= exact_product(source_amount, Decimal(0), rate)


@given(value=decimals_of_any_shape(), currency=currencies)
def test_round_down_truncates_towards_zero_to_the_currency_places(
    value: Decimal, currency: Currency
) -> None:
    assume(abs(value) < 10**15)

    rounded = round_down(value, currency)

    with localcontext(prec=200):
        cut_off = value - rounded
    assert places_of(rounded) == currency.places
    assert rounded.copy_abs() <= value.copy_abs()
    assert cut_off.copy_abs() < currency.quantum


# ---------------------------------------------------------------- normalise_rate


@given(rate=rates())
def test_normalise_rate_keeps_a_rate_of_at_most_ten_places_unchanged(rate: Decimal) -> None:
    normalised = normalise_rate(rate)

    assert normalised == rate
    assert normalised.as_tuple() == rate.as_tuple()


@given(
    units=st.integers(10**RATE_PLACES, 10**15),
    extra_places=st.integers(1, 8),
)
def test_normalise_rate_rounds_extra_places_down_to_ten(units: int, extra_places: int) -> None:
    rate = Decimal(units).scaleb(-RATE_PLACES - extra_places)

    normalised = normalise_rate(rate)

    assert places_of(normalised) <= RATE_PLACES
    assert normalised <= rate
    assert rate - normalised < Decimal(1).scaleb(-RATE_PLACES)


@pytest.mark.parametrize("rate", ["0", "-1.08", "NaN", "Infinity", "-Infinity"])
def test_normalise_rate_refuses_rates_that_are_not_positive_numbers(rate: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalise_rate(Decimal(rate))

    assert refused.value.code is ErrorCode.VALIDATION_ERROR
    assert refused.value.field == "rate"


@pytest.mark.parametrize("rate", ["1000000", "1E+20", "123456789.5"])
def test_normalise_rate_refuses_implausibly_large_rates(rate: str) -> None:
    with pytest.raises(DomainError, match="implausibly large") as refused:
        normalise_rate(Decimal(rate))

    assert refused.value.code is ErrorCode.VALIDATION_ERROR


def test_normalise_rate_accepts_the_largest_rate_in_range() -> None:
    assert normalise_rate(LARGEST_RATE) == Decimal("999999.9999999999")


def test_normalise_rate_refuses_a_rate_that_rounds_down_to_zero() -> None:
    with pytest.raises(DomainError, match="too small"):
        normalise_rate(Decimal("0.00000000009"))


# ---------------------------------------------------------------- slippage_bps


@given(indicative=rates(Decimal("0.01"), Decimal(100)), data=st.data())
def test_slippage_is_zero_when_the_final_rate_is_not_worse(
    indicative: Decimal, data: st.DataObject
) -> None:
    final = data.draw(rates(indicative, indicative * 2))

    assert slippage_bps(indicative, final) == 0


@given(indicative=rates(Decimal("0.01"), Decimal(100)), bps=st.integers(1, 10_000))
def test_slippage_counts_whole_basis_points_worse_exactly(indicative: Decimal, bps: int) -> None:
    final = indicative * (1 - Decimal(bps) / 10_000)

    assert slippage_bps(indicative, final) == bps


@given(indicative=rates(Decimal("0.01"), Decimal(100)), data=st.data())
def test_slippage_grows_as_the_final_rate_gets_worse(
    indicative: Decimal, data: st.DataObject
) -> None:
    better = data.draw(rates(Decimal("0.0000000001"), indicative))
    worse = data.draw(rates(Decimal("0.0000000001"), better))

    assert slippage_bps(indicative, worse) >= slippage_bps(indicative, better) >= 0
    assert slippage_bps(indicative, worse) <= 10_000


def test_slippage_of_one_percent_is_one_hundred_bps() -> None:
    assert slippage_bps(Decimal("1.08"), Decimal("1.0692")) == 100
