"""The customer's resources an order moves money between, and the rules that make them eligible.

A buy pays from a EUR fiat account into a wallet with a USDC address; a sell pays from such a
wallet into a EUR fiat account. Resources of another customer are indistinguishable from missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from domain.errors import DomainError, ErrorCode


class AccountStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class FiatAccount:
    id: UUID
    customer_id: UUID
    name: str
    currency: str
    status: AccountStatus
    iban_last4: str
    is_treasury: bool = False


@dataclass(frozen=True)
class Wallet:
    id: UUID
    customer_id: UUID
    label: str
    network: str
    usdc_address: str | None
    is_treasury: bool = False


def is_eligible_account(account: FiatAccount) -> bool:
    """Listed as a buy source and a sell destination: an active EUR account."""
    return (
        not account.is_treasury
        and account.currency == "EUR"
        and account.status is AccountStatus.ACTIVE
    )


def is_eligible_wallet(wallet: Wallet) -> bool:
    """Listed as a buy destination and a sell source: a customer wallet with a USDC address."""
    return not wallet.is_treasury and wallet.usdc_address is not None


def check_buy_source(account: FiatAccount | None, customer_id: UUID) -> FiatAccount:
    if account is None or account.customer_id != customer_id or account.is_treasury:
        raise DomainError(
            ErrorCode.SOURCE_NOT_FOUND, "source account not found", field="sourceAccountId"
        )
    if account.currency != "EUR":
        raise DomainError(
            ErrorCode.SOURCE_WRONG_CURRENCY, "source account is not in EUR", field="sourceAccountId"
        )
    if account.status is not AccountStatus.ACTIVE:
        raise DomainError(
            ErrorCode.SOURCE_INACTIVE, "source account is inactive", field="sourceAccountId"
        )
    return account


def check_buy_destination(wallet: Wallet | None, customer_id: UUID) -> Wallet:
    if wallet is None or wallet.customer_id != customer_id or wallet.is_treasury:
        raise DomainError(
            ErrorCode.DESTINATION_NOT_FOUND,
            "destination wallet not found",
            field="destinationWalletId",
        )
    if wallet.usdc_address is None:
        raise DomainError(
            ErrorCode.DESTINATION_NO_USDC_ADDRESS,
            "destination wallet has no USDC address",
            field="destinationWalletId",
        )
    return wallet


def check_sell_source(wallet: Wallet | None, customer_id: UUID) -> Wallet:
    if wallet is None or wallet.customer_id != customer_id or wallet.is_treasury:
        raise DomainError(
            ErrorCode.SOURCE_WALLET_NOT_FOUND, "source wallet not found", field="sourceWalletId"
        )
    if wallet.usdc_address is None:
        raise DomainError(
            ErrorCode.SOURCE_WALLET_NO_USDC,
            "source wallet has no USDC address",
            field="sourceWalletId",
        )
    return wallet


def check_sell_destination(account: FiatAccount | None, customer_id: UUID) -> FiatAccount:
    if account is None or account.customer_id != customer_id or account.is_treasury:
        raise DomainError(
            ErrorCode.DESTINATION_ACCOUNT_NOT_FOUND,
            "destination account not found",
            field="destinationAccountId",
        )
    if account.currency != "EUR":
        raise DomainError(
            ErrorCode.DESTINATION_ACCOUNT_WRONG_CURRENCY,
            "destination account is not in EUR",
            field="destinationAccountId",
        )
    if account.status is not AccountStatus.ACTIVE:
        raise DomainError(
            ErrorCode.DESTINATION_ACCOUNT_INACTIVE,
            "destination account is inactive",
            field="destinationAccountId",
        )
    return account


def check_sell_balance(balance: Decimal, amount: Decimal) -> None:
    """A sell quote needs the USDC in the wallet now (read live, not from any cache)."""
    if balance < amount:
        raise DomainError(
            ErrorCode.SOURCE_WALLET_INSUFFICIENT,
            "the source wallet holds less USDC than the amount",
            field="sourceAmount",
        )
