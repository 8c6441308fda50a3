from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar
from uuid import UUID

import pytest

from domain.errors import DomainError, ErrorCode
from domain.resources import (
    AccountStatus,
    FiatAccount,
    Wallet,
    check_buy_destination,
    check_buy_source,
    check_sell_destination,
    check_sell_source,
    is_eligible_account,
    is_eligible_wallet,
)

CUSTOMER = UUID("7b2d4f6a-8c0e-4a2b-9d4f-6a8c0e2b4d01")
OTHER_CUSTOMER = UUID("7b2d4f6a-8c0e-4a2b-9d4f-6a8c0e2b4d02")

ACCOUNT = FiatAccount(
    id=UUID(int=1),
    customer_id=CUSTOMER,
    name="Operating account",
    currency="EUR",
    status=AccountStatus.ACTIVE,
    iban_last4="4321",
)
WALLET = Wallet(
    id=UUID(int=2),
    customer_id=CUSTOMER,
    label="Main",
    network="ethereum",
    usdc_address="0x52908400098527886E0F7030069857D2E4169EE7",
)

Resource = TypeVar("Resource", FiatAccount, Wallet)


# ---------------------------------------------------------------- listing


def test_active_eur_account_of_the_customer_is_eligible() -> None:
    assert is_eligible_account(ACCOUNT)


@pytest.mark.parametrize(
    "account",
    [
        replace(ACCOUNT, currency="USD"),
        replace(ACCOUNT, status=AccountStatus.INACTIVE),
        replace(ACCOUNT, is_treasury=True),
    ],
)
def test_other_currency_inactive_or_treasury_accounts_are_not_eligible(
    account: FiatAccount,
) -> None:
    assert not is_eligible_account(account)


def test_wallet_with_a_usdc_address_is_eligible() -> None:
    assert is_eligible_wallet(WALLET)


@pytest.mark.parametrize(
    "wallet", [replace(WALLET, usdc_address=None), replace(WALLET, is_treasury=True)]
)
def test_wallet_without_an_address_or_of_the_treasury_is_not_eligible(wallet: Wallet) -> None:
    assert not is_eligible_wallet(wallet)


# ---------------------------------------------------------------- checks at quote time


def refused_with(
    check: Callable[[Resource | None, UUID], Resource],
    resource: Resource | None,
    code: ErrorCode,
    field: str,
) -> None:
    with pytest.raises(DomainError) as refusal:
        check(resource, CUSTOMER)
    assert (refusal.value.code, refusal.value.field, refusal.value.status) == (code, field, 422)


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (None, ErrorCode.SOURCE_NOT_FOUND),
        (replace(ACCOUNT, customer_id=OTHER_CUSTOMER), ErrorCode.SOURCE_NOT_FOUND),
        (replace(ACCOUNT, is_treasury=True), ErrorCode.SOURCE_NOT_FOUND),
        (replace(ACCOUNT, currency="USD"), ErrorCode.SOURCE_WRONG_CURRENCY),
        (replace(ACCOUNT, status=AccountStatus.INACTIVE), ErrorCode.SOURCE_INACTIVE),
    ],
)
def test_buy_source_must_be_an_active_eur_account_of_the_customer(
    account: FiatAccount | None, code: ErrorCode
) -> None:
    refused_with(check_buy_source, account, code, "sourceAccountId")


@pytest.mark.parametrize(
    ("wallet", "code"),
    [
        (None, ErrorCode.DESTINATION_NOT_FOUND),
        (replace(WALLET, customer_id=OTHER_CUSTOMER), ErrorCode.DESTINATION_NOT_FOUND),
        (replace(WALLET, is_treasury=True), ErrorCode.DESTINATION_NOT_FOUND),
        (replace(WALLET, usdc_address=None), ErrorCode.DESTINATION_NO_USDC_ADDRESS),
    ],
)
def test_buy_destination_must_be_a_wallet_of_the_customer_with_a_usdc_address(
    wallet: Wallet | None, code: ErrorCode
) -> None:
    refused_with(check_buy_destination, wallet, code, "destinationWalletId")


@pytest.mark.parametrize(
    ("wallet", "code"),
    [
        (None, ErrorCode.SOURCE_WALLET_NOT_FOUND),
        (replace(WALLET, customer_id=OTHER_CUSTOMER), ErrorCode.SOURCE_WALLET_NOT_FOUND),
        (replace(WALLET, is_treasury=True), ErrorCode.SOURCE_WALLET_NOT_FOUND),
        (replace(WALLET, usdc_address=None), ErrorCode.SOURCE_WALLET_NO_USDC),
    ],
)
def test_sell_source_must_be_a_wallet_of_the_customer_with_a_usdc_address(
    wallet: Wallet | None, code: ErrorCode
) -> None:
    refused_with(check_sell_source, wallet, code, "sourceWalletId")


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (None, ErrorCode.DESTINATION_ACCOUNT_NOT_FOUND),
        (replace(ACCOUNT, customer_id=OTHER_CUSTOMER), ErrorCode.DESTINATION_ACCOUNT_NOT_FOUND),
        (replace(ACCOUNT, is_treasury=True), ErrorCode.DESTINATION_ACCOUNT_NOT_FOUND),
        (replace(ACCOUNT, currency="USD"), ErrorCode.DESTINATION_ACCOUNT_WRONG_CURRENCY),
        (replace(ACCOUNT, status=AccountStatus.INACTIVE), ErrorCode.DESTINATION_ACCOUNT_INACTIVE),
    ],
)
def test_sell_destination_must_be_an_active_eur_account_of_the_customer(
    account: FiatAccount | None, code: ErrorCode
) -> None:
    refused_with(check_sell_destination, account, code, "destinationAccountId")


def test_another_customers_inactive_account_is_not_found_rather_than_inactive() -> None:
    theirs = replace(ACCOUNT, customer_id=OTHER_CUSTOMER, status=AccountStatus.INACTIVE)

    refused_with(check_buy_source, theirs, ErrorCode.SOURCE_NOT_FOUND, "sourceAccountId")


def test_eligible_resources_pass_every_check_unchanged() -> None:
    assert check_buy_source(ACCOUNT, CUSTOMER) is ACCOUNT
    assert check_buy_destination(WALLET, CUSTOMER) is WALLET
    assert check_sell_source(WALLET, CUSTOMER) is WALLET
    assert check_sell_destination(ACCOUNT, CUSTOMER) is ACCOUNT
