"""The two parties' ways of moving money: what a leg means in accounts or addresses, and the
ledger or chain calls. The rules of which leg is whose, how much and in which direction are
domain data (domain/movements.py); this module only looks up the accounts and wallets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.movements import DIRECTION, Direction, Party, amount_of, counterparty_of
from domain.order import Leg, Order
from services.adapters.ports import ChainPort, LedgerPort, Transfer
from services.resources.port import ResourceDirectory


class MovementImpossibleError(Exception):
    """The worker cannot even try: an account, wallet or treasury is missing (configuration)."""


@dataclass(frozen=True)
class Instruction:
    """One movement as the party sees it: from where, to where, how much."""

    source: str
    target: str
    amount: Decimal
    network: str | None = None

    def matches(self, transfer: Transfer) -> bool:
        """Whether a transfer read back under our reference is this movement."""
        return (
            same_address(transfer.source, self.source)
            and same_address(transfer.target, self.target)
            and transfer.amount == self.amount
            and transfer.network == self.network
        )


def same_address(a: str, b: str) -> bool:
    """EVM addresses compare without case; account ids and other addresses exactly."""
    if a.startswith("0x") and b.startswith("0x"):
        return a.lower() == b.lower()
    return a == b


class Mover(ABC):
    party: Party

    @abstractmethod
    async def instruction(self, order: Order, leg: Leg) -> Instruction:
        """The accounts or addresses and amount of a leg. Raises MovementImpossibleError."""

    @abstractmethod
    async def execute(self, instruction: Instruction, reference: str) -> Transfer:
        """Move; raises MovementRefusedError or MovementUnknownError."""

    @abstractmethod
    async def find(self, reference: str) -> Transfer | None:
        """The transfer booked under our reference; raises MovementUnknownError."""


def oriented(leg: Leg, customer: str, treasury: str) -> tuple[str, str]:
    """(source, target) of a leg: debits go to the treasury, refunds and payouts leave it."""
    if DIRECTION[leg] is Direction.TO_TREASURY:
        return customer, treasury
    return treasury, customer


class EurTreasury(Mover):
    party = Party.EUR_TREASURY

    def __init__(self, ledger: LedgerPort, resources: ResourceDirectory) -> None:
        self.ledger = ledger
        self.resources = resources

    async def instruction(self, order: Order, leg: Leg) -> Instruction:
        treasury = await self.resources.treasury_account()
        if treasury is None:
            raise MovementImpossibleError("no EUR treasury account is configured")
        account_id = counterparty_of(order, leg)
        customer = (await self.resources.accounts([account_id])).get(account_id)
        if customer is None:
            raise MovementImpossibleError(f"account {account_id} of order {order.id} not found")
        source, target = oriented(leg, str(customer.id), str(treasury.id))
        return Instruction(source, target, amount_of(order, leg))

    async def execute(self, instruction: Instruction, reference: str) -> Transfer:
        return await self.ledger.transfer(
            reference=reference,
            from_account=UUID(instruction.source),
            to_account=UUID(instruction.target),
            amount=instruction.amount,
        )

    async def find(self, reference: str) -> Transfer | None:
        return await self.ledger.find_transfer(reference)


class UsdcChain(Mover):
    party = Party.USDC_CHAIN

    def __init__(self, chain: ChainPort, resources: ResourceDirectory) -> None:
        self.chain = chain
        self.resources = resources

    async def instruction(self, order: Order, leg: Leg) -> Instruction:
        wallet_id = counterparty_of(order, leg)
        customer = (await self.resources.wallets([wallet_id])).get(wallet_id)
        if customer is None or customer.usdc_address is None:
            raise MovementImpossibleError(
                f"wallet {wallet_id} of order {order.id} has no USDC address"
            )
        treasury = await self.resources.treasury_wallet(customer.network)
        if treasury is None or treasury.usdc_address is None:
            raise MovementImpossibleError(f"no treasury wallet on {customer.network}")
        source, target = oriented(leg, customer.usdc_address, treasury.usdc_address)
        return Instruction(source, target, amount_of(order, leg), network=customer.network)

    async def execute(self, instruction: Instruction, reference: str) -> Transfer:
        assert instruction.network is not None  # noqa: S101 - chain instructions name one
        return await self.chain.transfer(
            reference=reference,
            network=instruction.network,
            from_address=instruction.source,
            to_address=instruction.target,
            amount=instruction.amount,
        )

    async def find(self, reference: str) -> Transfer | None:
        return await self.chain.find_transfer(reference)
