"""In-memory fakes of the outside parties, with settable values: for unit tests, and for running
the engine before the sandboxes exist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.money import Currency
from services.adapters.ports import (
    ChainPort,
    LedgerPort,
    MovementRefusedError,
    MovementUnknownError,
    Price,
    PricingPort,
    Transfer,
    UpstreamUnavailableError,
    WalletBalancePort,
)


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
        self.delay_seconds = 0.0
        """How long each price takes (a slow provider)."""
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
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
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


class FakeMovements:
    """An in-memory party that moves money: transfers idempotent on the reference, read back by
    it, with scripted trouble: `refuse` (a refusal code: nothing moves), `lose_answers` (book,
    then answer as if unknown), `fail_before` (unknown, nothing moves) and `unreadable` (reads
    back fail too)."""

    def __init__(self, party: str) -> None:
        self.party = party
        self.booked: dict[str, Transfer] = {}
        self.calls = 0
        self.refuse: str | None = None
        self.lose_answers = 0
        self.fail_before = 0
        self.unreadable = False

    def book(
        self,
        reference: str,
        source: str,
        target: str,
        amount: Decimal,
        network: str | None = None,
    ) -> Transfer:
        self.calls += 1
        if self.fail_before:
            self.fail_before -= 1
            raise MovementUnknownError(f"{self.party}: timeout (fake)")
        if self.refuse is not None:
            raise MovementRefusedError(self.refuse, f"{self.party} refused (fake)")
        transfer = self.booked.setdefault(
            reference,
            Transfer(
                reference,
                f"{self.party}-{len(self.booked) + 1}",
                source,
                target,
                amount,
                network=network,
            ),
        )
        if self.lose_answers:
            self.lose_answers -= 1
            raise MovementUnknownError(f"{self.party}: the answer was lost (fake)")
        return transfer

    async def find_transfer(self, reference: str) -> Transfer | None:
        if self.unreadable:
            raise MovementUnknownError(f"{self.party}: cannot read (fake)")
        return self.booked.get(reference)

    async def statement(self) -> AsyncIterator[Transfer]:
        for transfer in list(self.booked.values()):
            yield transfer


class FakeLedger(FakeMovements, LedgerPort):
    def __init__(self) -> None:
        super().__init__("bank")

    async def transfer(
        self, *, reference: str, from_account: UUID, to_account: UUID, amount: Decimal
    ) -> Transfer:
        return self.book(reference, str(from_account), str(to_account), amount)


class FakeChain(FakeMovements, ChainPort):
    def __init__(self) -> None:
        super().__init__("chain")
        self.balances = FakeWalletBalances()

    async def transfer(
        self, *, reference: str, network: str, from_address: str, to_address: str, amount: Decimal
    ) -> Transfer:
        return self.book(reference, from_address, to_address, amount, network)

    async def usdc_balance(self, *, network: str, address: str) -> Decimal:
        return await self.balances.usdc_balance(network=network, address=address)
