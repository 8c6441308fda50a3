"""An in-memory resource directory for unit tests, with the store's treasury rules."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from enum import Enum
from uuid import UUID, uuid4

from domain.resources import AccountStatus, FiatAccount, Wallet
from services.resources.port import (
    PLATFORM_CUSTOMER_ID,
    TREASURY_CURRENCY,
    InvalidResourceError,
    Network,
    ResourceConflictError,
    ResourceDirectory,
    ResourceNotFoundError,
    check_network,
    check_usdc_address,
)

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class Generated(Enum):
    """Marks an address the fake makes up: unique per wallet, of the network's shape."""

    ADDRESS = "generated"


class InMemoryResourceDirectory(ResourceDirectory):
    def __init__(self) -> None:
        self._accounts: dict[UUID, FiatAccount] = {}
        self._wallets: dict[UUID, Wallet] = {}

    def add_account(  # noqa: PLR0913 - test helper: every field has a default but the owner
        self,
        customer_id: UUID,
        *,
        name: str = "Main EUR account",
        currency: str = "EUR",
        status: AccountStatus = AccountStatus.ACTIVE,
        iban_last4: str = "3000",
        account_id: UUID | None = None,
    ) -> FiatAccount:
        if customer_id == PLATFORM_CUSTOMER_ID:
            raise InvalidResourceError("the platform customer holds treasury resources only")
        account = FiatAccount(
            id=account_id or uuid4(),
            customer_id=customer_id,
            name=name,
            currency=currency,
            status=status,
            iban_last4=iban_last4,
        )
        return self._keep_account(account)

    def add_treasury_account(
        self,
        *,
        name: str = "EUR treasury",
        iban_last4: str = "0000",
        account_id: UUID | None = None,
    ) -> FiatAccount:
        if any(account.is_treasury for account in self._accounts.values()):
            raise ResourceConflictError("a EUR treasury account already exists")
        account = FiatAccount(
            id=account_id or uuid4(),
            customer_id=PLATFORM_CUSTOMER_ID,
            name=name,
            currency=TREASURY_CURRENCY,
            status=AccountStatus.ACTIVE,
            iban_last4=iban_last4,
            is_treasury=True,
        )
        return self._keep_account(account)

    def add_wallet(
        self,
        customer_id: UUID,
        *,
        label: str = "Main wallet",
        network: str = Network.ETHEREUM,
        usdc_address: str | Generated | None = Generated.ADDRESS,
        wallet_id: UUID | None = None,
    ) -> Wallet:
        """Add a customer's wallet; by default with a made-up address, `usdc_address=None` for
        a wallet without one."""
        if customer_id == PLATFORM_CUSTOMER_ID:
            raise InvalidResourceError("the platform customer holds treasury resources only")
        return self._keep_wallet(customer_id, label, network, usdc_address, wallet_id)

    def add_treasury_wallet(
        self,
        network: str = Network.ETHEREUM,
        *,
        label: str = "USDC treasury",
        usdc_address: str | Generated = Generated.ADDRESS,
        wallet_id: UUID | None = None,
    ) -> Wallet:
        if self._treasury_wallet(network) is not None:
            raise ResourceConflictError("a treasury wallet already exists on this network")
        return self._keep_wallet(PLATFORM_CUSTOMER_ID, label, network, usdc_address, wallet_id)

    def set_account_status(self, account_id: UUID, status: AccountStatus) -> FiatAccount:
        account = self._accounts.get(account_id)
        if account is None:
            raise ResourceNotFoundError(f"account {account_id} not found")
        self._accounts[account_id] = replace(account, status=status)
        return self._accounts[account_id]

    async def accounts(self, ids: Collection[UUID]) -> dict[UUID, FiatAccount]:
        return {id_: self._accounts[id_] for id_ in ids if id_ in self._accounts}

    async def wallets(self, ids: Collection[UUID]) -> dict[UUID, Wallet]:
        return {id_: self._wallets[id_] for id_ in ids if id_ in self._wallets}

    async def accounts_of(self, customer_id: UUID) -> list[FiatAccount]:
        return [
            account for account in self._accounts.values() if account.customer_id == customer_id
        ]

    async def wallets_of(self, customer_id: UUID) -> list[Wallet]:
        return [wallet for wallet in self._wallets.values() if wallet.customer_id == customer_id]

    async def treasury_wallet(self, network: str) -> Wallet | None:
        return self._treasury_wallet(network)

    async def treasury_account(self) -> FiatAccount | None:
        return next((account for account in self._accounts.values() if account.is_treasury), None)

    def _treasury_wallet(self, network: str) -> Wallet | None:
        treasuries = (wallet for wallet in self._wallets.values() if wallet.is_treasury)
        return next((wallet for wallet in treasuries if wallet.network == network), None)

    def _keep_account(self, account: FiatAccount) -> FiatAccount:
        if account.id in self._accounts:
            raise ResourceConflictError(f"account {account.id} already exists")
        self._accounts[account.id] = account
        return account

    def _keep_wallet(
        self,
        customer_id: UUID,
        label: str,
        network: str,
        usdc_address: str | Generated | None,
        wallet_id: UUID | None,
    ) -> Wallet:
        chain = check_network(network)
        wallet_id = wallet_id or uuid4()
        if wallet_id in self._wallets:
            raise ResourceConflictError(f"wallet {wallet_id} already exists")
        if usdc_address is Generated.ADDRESS:
            usdc_address = made_up_address(chain, wallet_id)
        elif usdc_address is not None:
            usdc_address = check_usdc_address(chain, usdc_address)
        wallet = Wallet(
            id=wallet_id,
            customer_id=customer_id,
            label=label,
            network=chain.value,
            usdc_address=usdc_address,
            is_treasury=customer_id == PLATFORM_CUSTOMER_ID,
        )
        self._wallets[wallet_id] = wallet
        return wallet


def made_up_address(network: Network, seed: UUID) -> str:
    """A well-formed address derived from `seed`: distinct seeds give distinct addresses."""
    if network is Network.SOLANA:
        number = int.from_bytes(seed.bytes * 2, "big")
        digits = []
        while number:
            number, digit = divmod(number, len(_BASE58))
            digits.append(_BASE58[digit])
        return "".join(reversed(digits)).rjust(32, _BASE58[1])
    return f"0x{seed.hex}{'0' * 8}"
