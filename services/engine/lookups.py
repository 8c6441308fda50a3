"""What a batch's commands need from the outside world before they can be decided: prices,
live wallet balances, accounts and wallets. Each command's table entry (handlers.py) names its
`needs`; `Lookout.gather` asks for all of a batch's at once, concurrently, and a command that
needs nothing (a confirm, a cancel, a worker's outcome) makes no call at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar
from uuid import UUID, uuid5

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from domain.order import Order, Side, SizeLimits, checked_source_amount
from domain.resources import FiatAccount, Wallet
from services.adapters.ports import Price, PricingPort, UpstreamError, WalletBalancePort
from services.resources.port import ResourceDirectory

log = logging.getLogger(__name__)
T = TypeVar("T")

UPSTREAM_CONCURRENCY = 64


@dataclass
class Inputs:
    """What the outside world said, fetched for the whole batch before deciding."""

    prices: dict[UUID, Price | DomainError] = field(default_factory=dict)
    balances: dict[UUID, Decimal | DomainError] = field(default_factory=dict)
    accounts: dict[UUID, FiatAccount] = field(default_factory=dict)
    wallets: dict[UUID, Wallet] = field(default_factory=dict)

    def price_for(self, command_id: UUID) -> Price:
        return _found(self.prices.get(command_id), "no price could be had")

    def balance_for(self, command_id: UUID) -> Decimal:
        return _found(self.balances.get(command_id), "the wallet balance could not be read")


def _found(found: T | DomainError | None, missing: str) -> T:
    if found is None:
        raise DomainError(ErrorCode.QUOTE_UNAVAILABLE, missing)
    if isinstance(found, DomainError):
        raise found
    return found


@dataclass(frozen=True)
class Lookups:
    """What one command needs from outside before it can be decided."""

    price: tuple[Side, Decimal] | None = None
    """Price converting this source amount on this side."""
    accounts: frozenset[UUID] = frozenset()
    wallets: frozenset[UUID] = frozenset()
    balance_of: UUID | None = None
    """The wallet whose live USDC balance the decision checks."""


NOTHING = Lookups()


def nothing(_order: Order | None, _command: c.Command, _limits: SizeLimits) -> Lookups:
    return NOTHING


def order_price(order: Order | None, _command: c.Command, _limits: SizeLimits) -> Lookups:
    """The live price of the order's source amount (a requote, an approval)."""
    return NOTHING if order is None else Lookups(price=(order.side, order.source_amount))


def quote_inputs(order: Order | None, cmd: c.RequestQuote, limits: SizeLimits) -> Lookups:
    """A new quote: its account and wallet, a price, and for a sell the wallet's live balance.
    An amount the decision refuses anyway needs no price."""
    if order is not None:
        return NOTHING  # a redelivered quote is answered from the order
    buy = cmd.side is Side.BUY
    account, wallet = (
        (cmd.source_id, cmd.destination_id) if buy else (cmd.destination_id, cmd.source_id)
    )
    try:
        amount = checked_source_amount(cmd.side, cmd.source_amount, limits)
    except DomainError:
        return Lookups(accounts=frozenset({account}), wallets=frozenset({wallet}))
    return Lookups(
        price=(cmd.side, amount),
        accounts=frozenset({account}),
        wallets=frozenset({wallet}),
        balance_of=None if buy else wallet,
    )


class Lookout:
    """The engine's calls to the outside world, at most `UPSTREAM_CONCURRENCY` at a time."""

    def __init__(
        self,
        pricing: PricingPort,
        balances: WalletBalancePort,
        resources: ResourceDirectory,
        *,
        deadline_seconds: float = 6.0,
    ) -> None:
        """`deadline_seconds` bounds each price or balance call, its retries included (the
        `lookup_deadline_seconds` setting, below the gateway's reply timeout)."""
        self.pricing = pricing
        self.balances = balances
        self.resources = resources
        self.deadline_seconds = deadline_seconds
        self._upstream = asyncio.Semaphore(UPSTREAM_CONCURRENCY)

    async def gather(self, needs: Iterable[tuple[UUID, Lookups]]) -> Inputs:
        """Every lookup of (command id, what it needs): resources first, then prices and
        balances, all concurrently."""
        inputs = Inputs()
        needs = [(command_id, lookups) for command_id, lookups in needs if lookups != NOTHING]
        await self._resources([lookups for _, lookups in needs], inputs)
        calls: list[Awaitable[None]] = []
        for command_id, lookups in needs:
            if lookups.price is not None:
                side, amount = lookups.price
                calls.append(self._price(command_id, side, amount, inputs))
            if lookups.balance_of is not None:
                calls.append(self._balance(command_id, lookups.balance_of, inputs))
        await asyncio.gather(*calls)
        return inputs

    async def _resources(self, needs: list[Lookups], inputs: Inputs) -> None:
        account_ids = {account for lookups in needs for account in lookups.accounts}
        wallet_ids = {wallet for lookups in needs for wallet in lookups.wallets}
        if not account_ids and not wallet_ids:
            return
        accounts, wallets = await asyncio.gather(
            self.resources.accounts(account_ids),
            self.resources.wallets(wallet_ids),
        )
        inputs.accounts.update(accounts)
        inputs.wallets.update(wallets)

    async def _price(self, command_id: UUID, side: Side, amount: Decimal, inputs: Inputs) -> None:
        async with self._upstream:
            try:
                async with asyncio.timeout(self.deadline_seconds):
                    price: Price | DomainError = await self.pricing.price(
                        source_currency=side.source_currency,
                        destination_currency=side.destination_currency,
                        source_amount=amount,
                        idempotency_key=uuid5(command_id, "price"),
                    )
            except (UpstreamError, TimeoutError) as error:
                log.warning("pricing failed for command %s: %s", command_id, error)
                price = DomainError(
                    ErrorCode.QUOTE_UNAVAILABLE, "no price could be had from the provider"
                )
        inputs.prices[command_id] = price

    async def _balance(self, command_id: UUID, wallet_id: UUID, inputs: Inputs) -> None:
        wallet = inputs.wallets.get(wallet_id)
        if wallet is None or wallet.usdc_address is None:
            return  # the decision refuses it for the wallet itself
        async with self._upstream:
            try:
                async with asyncio.timeout(self.deadline_seconds):
                    balance: Decimal | DomainError = await self.balances.usdc_balance(
                        network=wallet.network, address=wallet.usdc_address
                    )
            except (UpstreamError, TimeoutError) as error:
                log.warning("balance read failed for command %s: %s", command_id, error)
                balance = DomainError(
                    ErrorCode.QUOTE_UNAVAILABLE, "the live wallet balance could not be read"
                )
        inputs.balances[command_id] = balance
