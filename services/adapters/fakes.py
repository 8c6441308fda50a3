"""In-memory fakes of the outside parties, with settable values: for unit tests, and for running
the engine before the sandboxes exist."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.money import Currency
from services.adapters.ports import Price, PricingPort, UpstreamUnavailableError, WalletBalancePort


class FakePricing(PricingPort):
    """Quotes `rates[(source, destination)]` with a fee of `fee_bps` of the source amount."""

    def __init__(
        self, rates: dict[tuple[Currency, Currency], Decimal] | None = None, fee_bps: int = 0
    ) -> None:
        self.rates = rates or {
            (Currency.EUR, Currency.USDC): Decimal("1.0800"),
            (Currency.USDC, Currency.EUR): Decimal("0.9200"),
        }
        self.fee_bps = fee_bps
        self.available = True
        self.calls = 0

    async def price(
        self,
        *,
        source_currency: Currency,
        destination_currency: Currency,
        source_amount: Decimal,
        idempotency_key: UUID,
    ) -> Price:
        self.calls += 1
        if not self.available:
            raise UpstreamUnavailableError("fake provider is down")
        fee = (source_amount * self.fee_bps / 10_000).quantize(source_currency.quantum)
        return Price(
            rate=self.rates[(source_currency, destination_currency)],
            fee=fee,
            provider_quote_id=f"fake-{idempotency_key}",
            valid_until=None,
        )


class FakeWalletBalances(WalletBalancePort):
    """Balances per address; `default` for any address not set; unavailable when told so."""

    def __init__(self, default: Decimal = Decimal("1000000.000000")) -> None:
        self.balances: dict[str, Decimal] = {}
        self.default = default
        self.available = True

    async def usdc_balance(self, *, network: str, address: str) -> Decimal:  # noqa: ARG002 - per address
        if not self.available:
            raise UpstreamUnavailableError("fake chain is down")
        return self.balances.get(address, self.default)


class FixedClock:
    """A clock for tests: `now()` returns `at`, which tests move."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at
