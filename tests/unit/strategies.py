"""Hypothesis strategies and order builders shared by the unit tests of the domain.

Amounts and rates are built from integers and an exponent, so that every drawn value is an exact
`Decimal` with a known exponent. By default they span the whole range the domain accepts: amounts
below 10**15 and rates below 10**6 (domain/money.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from uuid import UUID

from hypothesis import strategies as st

from domain.money import MAX_DIGITS_BEFORE_POINT, MAX_RATE_DIGITS, RATE_PLACES, Currency
from domain.order import (
    Actor,
    ActorKind,
    ApprovalControls,
    ApprovalRequest,
    Cause,
    Order,
    QuoteTerms,
    Side,
    SizeLimits,
)

LARGEST_AMOUNT_UNITS = 10**MAX_DIGITS_BEFORE_POINT
LARGEST_RATE = Decimal(10**MAX_RATE_DIGITS) - Decimal(1).scaleb(-RATE_PLACES)

currencies = st.sampled_from(Currency)
sides = st.sampled_from(Side)


def exact_decimal(units: int, exponent: int) -> Decimal:
    """units x 10**exponent, never rounded by a decimal context."""
    return Decimal(f"{units}E{exponent}")


def amounts(
    currency: Currency,
    minimum: Decimal = Decimal(0),
    maximum: Decimal | None = None,
) -> st.SearchStrategy[Decimal]:
    """Positive amounts at exactly the currency's places, within [minimum, maximum]."""
    lowest = max(1, int(minimum.scaleb(currency.places)))
    highest = (
        LARGEST_AMOUNT_UNITS * 10**currency.places - 1
        if maximum is None
        else int(maximum.scaleb(currency.places))
    )
    return st.integers(lowest, highest).map(lambda units: exact_decimal(units, -currency.places))


def rates(
    minimum: Decimal = Decimal("0.0000000001"), maximum: Decimal = LARGEST_RATE
) -> st.SearchStrategy[Decimal]:
    """Positive rates with exactly RATE_PLACES places."""
    return st.integers(int(minimum.scaleb(RATE_PLACES)), int(maximum.scaleb(RATE_PLACES))).map(
        lambda units: exact_decimal(units, -RATE_PLACES)
    )


def realistic_rates(side: Side) -> st.SearchStrategy[Decimal]:
    """Rates near the EUR/USDC market: about 1.08 USDC per EUR, 0.92 EUR per USDC."""
    if side is Side.BUY:
        return rates(Decimal("0.9"), Decimal("1.3"))
    return rates(Decimal("0.7"), Decimal("1.1"))


def written_variously(amount: Decimal) -> st.SearchStrategy[Decimal]:
    """The same value with its trailing zeros stripped, as given, or with two more of them."""
    with localcontext(prec=200):
        more_zeros = amount.quantize(Decimal(1).scaleb(-places_of(amount) - 2))
        return st.sampled_from([amount.normalize(), amount, more_zeros])


@st.composite
def decimals_of_any_shape(draw: st.DrawFn) -> Decimal:
    """Finite decimals of either sign and up to 40 digits, with up to 40 places or a positive
    exponent: longer than the default 28-digit decimal context on purpose."""
    coefficient = draw(st.integers(-(10**40), 10**40))
    exponent = draw(st.integers(-40, 3))
    return exact_decimal(coefficient, exponent)


def places_of(value: Decimal) -> int:
    """Decimal places of a value's exponent (0 for an integral exponent)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def has_at_most_places(value: Decimal, places: int) -> bool:
    """Whether a value is a whole number of 10**-places, judged by value, not by its exponent."""
    with localcontext(prec=200):
        scaled = value.scaleb(places)
        return scaled == scaled.to_integral_value()


def is_exact_to_currency(value: Decimal, currency: Currency) -> bool:
    """A money value in its currency's exact form: same value at the quantum, and that exponent."""
    return value == value.quantize(currency.quantum) and value.as_tuple().exponent == (
        -currency.places
    )


# ---------------------------------------------------------------- builders of orders

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
QUOTE_TTL = timedelta(seconds=30)
CUSTOMER_ID = UUID("2f1c0a52-7a3e-4c55-9a0e-5d1e0b7c1a01")
LIMITS = SizeLimits(
    minimum={Currency.EUR: Decimal("10.00"), Currency.USDC: Decimal("10.000000")},
    maximum={Currency.EUR: Decimal("1000000.00"), Currency.USDC: Decimal("1000000.000000")},
)
CUSTOMER = Actor(ActorKind.CUSTOMER, str(CUSTOMER_ID))
OPERATOR = Actor(ActorKind.OPERATOR, "operator-7", "Ada Operator")
SECOND_OPERATOR = Actor(ActorKind.OPERATOR, "operator-8", "Bo Operator")
ANY_RATE = ApprovalControls(collar_bps=10_000, dual_control_eur=Decimal(10**15))
"""Controls that never bind: a collar as wide as the live rate itself, no dual control."""
WORKER = Actor(ActorKind.SYSTEM, "worker")
SWEEPER = Actor(ActorKind.SYSTEM, "expiry-sweeper")


def at_live(rate: str | Decimal, provider_quote_id: str | None = None) -> ApprovalRequest:
    """An approval at the live rate `rate`, as the provider quoted it."""
    return ApprovalRequest(rate=None, live_rate=Decimal(rate), provider_quote_id=provider_quote_id)


def terms(
    rate: str | Decimal, fee: str | Decimal, expires_at: datetime, provider_quote_id: str = "lp-1"
) -> QuoteTerms:
    return QuoteTerms(Decimal(rate), Decimal(fee), expires_at, provider_quote_id)


def new_order(  # noqa: PLR0913 - a quote has this many facts
    side: Side,
    source_amount: str | Decimal,
    rate: str | Decimal,
    fee: str | Decimal,
    *,
    now: datetime = T0,
    order_id: UUID | None = None,
    command_id: UUID | None = None,
    customer_id: UUID = CUSTOMER_ID,
) -> Order:
    """A quoted order; the customer actor is the customer named."""
    return Order.request_quote(
        order_id=order_id or UUID(int=1),
        customer_id=customer_id,
        side=side,
        source_id=UUID(int=2),
        destination_id=UUID(int=3),
        source_amount=Decimal(source_amount),
        limits=LIMITS,
        terms=terms(rate, fee, now + QUOTE_TTL),
        cause=Cause(Actor(ActorKind.CUSTOMER, str(customer_id)), command_id or UUID(int=4), now),
    )
