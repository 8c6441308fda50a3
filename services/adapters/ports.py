"""Ports to the outside parties of DESIGN.md section 7. Adapters implement them over HTTP;
fakes implement them in memory for unit tests and for running the engine without sandboxes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.money import Currency


class UpstreamError(Exception):
    """An outside party failed to answer as asked."""


class UpstreamUnavailableError(UpstreamError):
    """Retryable: a timeout, a refused connection, a 5xx or a 429. A retry may succeed."""


class UpstreamRejectedError(UpstreamError):
    """Permanent: the party understood and refused (insufficient funds, unknown account...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MovementRefusedError(UpstreamRejectedError):
    """A money movement refused with one of the party's codes that mean nothing moved (its
    adapter lists them). Only this is ever recorded as a failed movement."""


class MovementUnknownError(UpstreamError):
    """A money movement whose outcome is not known: a timeout, a 5xx, an unreadable answer, an
    unexpected refusal, a conflict. It may have moved: reconcile it by its reference, never
    record it as failed."""


@dataclass(frozen=True)
class Price:
    """A liquidity provider's price for converting `source_amount`.

    `rate` is destination units per source unit; `fee` is in the source currency and comes off
    the source amount before conversion. `provider_quote_id` stays server-side.
    """

    rate: Decimal
    fee: Decimal
    provider_quote_id: str | None
    valid_until: datetime | None


class PricingPort(ABC):
    @abstractmethod
    async def price(
        self,
        *,
        source_currency: Currency,
        destination_currency: Currency,
        source_amount: Decimal,
        idempotency_key: UUID,
    ) -> Price:
        """A price for selling `source_amount` of `source_currency`; `idempotency_key` makes a
        retried call return the same provider quote. Raises UpstreamError."""


class WalletBalancePort(ABC):
    @abstractmethod
    async def usdc_balance(self, *, network: str, address: str) -> Decimal:
        """The live USDC balance of an address. Raises UpstreamError."""


@dataclass(frozen=True)
class Transfer:
    """A booked money movement: `reference` is ours (order id + leg + attempt), `external_id`
    the bank reference or the chain transaction hash (server-side only); `source` and `target`
    are account ids (bank) or addresses (chain)."""

    reference: str
    external_id: str
    source: str
    target: str
    amount: Decimal
    network: str | None = None
    """The chain's network; None for the bank."""


class MovementLedger(ABC):
    """What a party that moves money lets us read back: one transfer by our reference (to learn
    the outcome of a movement whose answer was lost), and the whole statement (to reconcile)."""

    @abstractmethod
    async def find_transfer(self, reference: str) -> Transfer | None:
        """The transfer booked under `reference`, or None when there is none. Raises
        MovementUnknownError when the party cannot say."""

    @abstractmethod
    def statement(self) -> AsyncIterator[Transfer]:
        """Every transfer the party booked, in booking order."""


class LedgerPort(MovementLedger):
    """The EUR core-banking ledger."""

    @abstractmethod
    async def transfer(
        self,
        *,
        reference: str,
        from_account: UUID,
        to_account: UUID,
        amount: Decimal,
    ) -> Transfer:
        """Move EUR; idempotent on `reference`. Raises MovementRefusedError (nothing moved) or
        MovementUnknownError (the outcome is not known)."""


class ChainPort(WalletBalancePort, MovementLedger):
    """The USDC chain."""

    @abstractmethod
    async def transfer(
        self,
        *,
        reference: str,
        network: str,
        from_address: str,
        to_address: str,
        amount: Decimal,
    ) -> Transfer:
        """Move USDC; idempotent on `reference`. Raises MovementRefusedError (nothing moved) or
        MovementUnknownError (the outcome is not known)."""
