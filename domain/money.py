"""Money: `Decimal` only, with each currency's exact places.

EUR has 2 decimal places and USDC 6. An amount with more places than its currency allows is
refused, never rounded. A converted amount is rounded down to the destination's places, so the
platform never pays out a fraction it did not receive.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import ROUND_DOWN, ROUND_UP, Context, Decimal, InvalidOperation, localcontext
from enum import StrEnum

from domain.errors import DomainError, ErrorCode


class Currency(StrEnum):
    EUR = "EUR"
    USDC = "USDC"

    @property
    def places(self) -> int:
        return _PLACES[self]

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.places)


_PLACES = {Currency.EUR: 2, Currency.USDC: 6}

# Rates are kept to 10 decimal places, ample for EUR/USDC.
RATE_PLACES = 10
RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
BPS = Decimal(10_000)
# Amounts are below 10**15 in any currency: far above every configured maximum.
MAX_DIGITS_BEFORE_POINT = 15
# Rates are below 10**6: EUR/USDC is near 1.
MAX_RATE_DIGITS = 6
# 15 + 6 integer digits, 6 + 10 places and room to spare: no product in range is rounded.
EXACT_PRECISION = 60


def parse_amount(value: str | Decimal, currency: Currency, *, field: str) -> Decimal:
    """A positive amount with at most the currency's places, returned at exactly those places."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise DomainError(
            ErrorCode.VALIDATION_ERROR, f"{field} is not a decimal number", field=field
        ) from None
    if not amount.is_finite():
        raise DomainError(
            ErrorCode.VALIDATION_ERROR, f"{field} is not a finite number", field=field
        )
    if amount <= 0:
        raise DomainError(
            ErrorCode.VALIDATION_ERROR, f"{field} must be greater than zero", field=field
        )
    if amount.adjusted() >= MAX_DIGITS_BEFORE_POINT:
        raise DomainError(ErrorCode.VALIDATION_ERROR, f"{field} is too large", field=field)
    if significant_places(amount) > currency.places:
        raise DomainError(
            ErrorCode.VALIDATION_ERROR,
            f"{field} has more than {currency.places} decimal places for {currency}",
            field=field,
        )
    with exact():
        return amount.quantize(currency.quantum)


def check_size(
    amount: Decimal, currency: Currency, minimum: Decimal, maximum: Decimal, *, field: str
) -> None:
    if amount < minimum:
        raise DomainError(
            ErrorCode.AMOUNT_BELOW_MINIMUM,
            f"{field} is below the minimum of {minimum} {currency}",
            field=field,
        )
    if amount > maximum:
        raise DomainError(
            ErrorCode.AMOUNT_ABOVE_MAXIMUM,
            f"{field} is above the maximum of {maximum} {currency}",
            field=field,
        )


def round_down(amount: Decimal, currency: Currency) -> Decimal:
    with exact():
        return amount.quantize(currency.quantum, rounding=ROUND_DOWN)


def normalise_rate(rate: Decimal) -> Decimal:
    """A positive rate with at most RATE_PLACES places (rounded down: never better than quoted)."""
    if not rate.is_finite() or rate <= 0:
        raise DomainError(
            ErrorCode.VALIDATION_ERROR, "rate must be a positive number", field="rate"
        )
    if rate.adjusted() >= MAX_RATE_DIGITS:
        raise DomainError(ErrorCode.VALIDATION_ERROR, "rate is implausibly large", field="rate")
    if decimal_places(rate) > RATE_PLACES:
        with exact():
            rate = rate.quantize(RATE_QUANTUM, rounding=ROUND_DOWN)
        if rate == 0:
            raise DomainError(ErrorCode.VALIDATION_ERROR, "rate is too small", field="rate")
    return rate


def decimal_places(value: Decimal) -> int:
    """Places as written, trailing zeros included (1.50 has 2)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def significant_places(value: Decimal) -> int:
    """Places that matter, trailing zeros excluded (1.50 has 1), with no context rounding."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    places = -exponent
    for digit in reversed(digits):
        if places == 0 or digit != 0:
            break
        places -= 1
    return places


def exact() -> AbstractContextManager[Context]:
    """A decimal context wide enough that amounts and rates in range are never rounded by it:
    the only rounding is the explicit one to a currency's places."""
    return localcontext(prec=EXACT_PRECISION)


def convert(source_amount: Decimal, fee: Decimal, rate: Decimal, destination: Currency) -> Decimal:
    """`(source - fee) x rate`, rounded down to the destination's places."""
    with exact():
        product = (source_amount - fee) * rate
    return round_down(product, destination)


def slippage_bps(indicative_rate: Decimal, final_rate: Decimal) -> Decimal:
    """How much worse the final rate is than the indicative one, in basis points (0 if better)."""
    if final_rate >= indicative_rate:
        return Decimal(0)
    return (indicative_rate - final_rate) / indicative_rate * BPS


def collar(live_rate: Decimal, collar_bps: int) -> tuple[Decimal, Decimal]:
    """The rates within `collar_bps` basis points of the live rate, both ends included, kept to
    RATE_PLACES places inward (the lower end rounded up, the upper down)."""
    with exact():
        width = live_rate * Decimal(collar_bps) / BPS
        low = (live_rate - width).quantize(RATE_QUANTUM, rounding=ROUND_UP)
        high = (live_rate + width).quantize(RATE_QUANTUM, rounding=ROUND_DOWN)
    return low, high
