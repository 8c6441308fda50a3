from __future__ import annotations

from uuid import uuid4

import pytest

from domain.resources import AccountStatus, check_buy_destination, is_eligible_wallet
from services.resources.fake import InMemoryResourceDirectory, made_up_address
from services.resources.port import (
    PLATFORM_CUSTOMER_ID,
    InvalidResourceError,
    Network,
    ResourceConflictError,
    ResourceNotFoundError,
    check_currency,
    check_usdc_address,
    mask_iban,
)

IBAN_DE = "DE89370400440532013000"


def test_mask_iban_keeps_country_check_digits_and_last_four_only() -> None:
    masked = mask_iban(IBAN_DE)

    assert masked.masked == "DE89 **** **** **** **** 3000"
    assert masked.last4 == "3000"
    assert "0532" not in masked.masked


def test_mask_iban_accepts_spaces_and_lower_case() -> None:
    assert mask_iban("de89 3704 0044 0532 0130 00") == mask_iban(IBAN_DE)


@pytest.mark.parametrize(
    ("iban", "masked"),
    [
        ("NO9386011117947", "NO93 **** **** 7947"),
        ("GB29NWBK60161331926819", "GB29 **** **** **** **** 6819"),
        ("FR1420041010050500013M02606", "FR14 **** **** **** **** **** 2606"),
        ("MT84MALT011000012345MTLCAST001S", "MT84 **** **** **** **** **** **** 001S"),
    ],
)
def test_mask_iban_hides_every_character_between_the_first_and_last_four(
    iban: str, masked: str
) -> None:
    assert mask_iban(iban).masked == masked


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013001",
        "DE98370400440532013000",
    ],
)
def test_mask_iban_refuses_a_wrong_check_sum(iban: str) -> None:
    with pytest.raises(InvalidResourceError, match="mod 97"):
        mask_iban(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "",
        "DE8937040044",
        "1289370400440532013000",
        "DEXX370400440532013000",
        "DE00370400440532013000",
        "DE89-3704-0044-0532-0130-00",
        "DE89370400440532013000" + "1" * 13,
    ],
)
def test_mask_iban_refuses_a_malformed_iban(iban: str) -> None:
    with pytest.raises(InvalidResourceError, match="country code"):
        mask_iban(iban)


def test_refusal_message_never_repeats_the_iban() -> None:
    with pytest.raises(InvalidResourceError) as refused:
        mask_iban("DE89370400440532013001")

    assert "370400440532013001" not in str(refused.value)


def test_currency_is_normalised_to_an_upper_case_iso_code() -> None:
    assert check_currency(" eur ") == "EUR"
    with pytest.raises(InvalidResourceError):
        check_currency("EURO")


@pytest.mark.parametrize(
    ("network", "address"),
    [
        (Network.ETHEREUM, "0x" + "aB" * 20),
        (Network.POLYGON, "0x" + "12" * 20),
        (Network.SOLANA, "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"),
    ],
)
def test_usdc_address_of_the_network_shape_is_accepted(network: Network, address: str) -> None:
    assert check_usdc_address(network, f" {address} ") == address


@pytest.mark.parametrize(
    ("network", "address"),
    [
        (Network.ETHEREUM, "0x" + "ab" * 19),
        (Network.POLYGON, "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"),
        (Network.SOLANA, "0x" + "ab" * 20),
        (Network.SOLANA, "0OIl" * 10),
    ],
)
def test_usdc_address_of_another_shape_is_refused(network: Network, address: str) -> None:
    with pytest.raises(InvalidResourceError, match=str(network)):
        check_usdc_address(network, address)


@pytest.mark.parametrize("network", list(Network))
def test_made_up_addresses_are_valid_and_distinct(network: Network) -> None:
    first, second = made_up_address(network, uuid4()), made_up_address(network, uuid4())

    assert check_usdc_address(network, first) == first
    assert first != second


async def test_batch_lookup_returns_known_ids_and_omits_unknown_ones() -> None:
    directory = InMemoryResourceDirectory()
    customer = uuid4()
    account = directory.add_account(customer)
    wallet = directory.add_wallet(customer)
    unknown = uuid4()

    assert await directory.accounts([account.id, unknown]) == {account.id: account}
    assert await directory.wallets([wallet.id, unknown]) == {wallet.id: wallet}
    assert await directory.accounts([]) == {}


async def test_resources_of_a_customer_are_listed_in_creation_order() -> None:
    directory = InMemoryResourceDirectory()
    customer, other = uuid4(), uuid4()
    first = directory.add_account(customer, name="first")
    directory.add_account(other)
    second = directory.add_account(customer, name="second", status=AccountStatus.INACTIVE)
    wallet = directory.add_wallet(customer, usdc_address=None)

    assert await directory.accounts_of(customer) == [first, second]
    assert await directory.wallets_of(customer) == [wallet]
    assert await directory.wallets_of(other) == []


async def test_wallet_gets_a_made_up_address_unless_told_it_has_none() -> None:
    directory = InMemoryResourceDirectory()
    customer = uuid4()
    with_address = directory.add_wallet(customer, network=Network.SOLANA)
    without = directory.add_wallet(customer, usdc_address=None)

    assert with_address.usdc_address is not None
    assert with_address.network == "solana"
    assert is_eligible_wallet(with_address)
    assert not is_eligible_wallet(without)
    assert check_buy_destination(with_address, customer) == with_address


def test_wallet_with_a_malformed_address_is_refused() -> None:
    with pytest.raises(InvalidResourceError):
        InMemoryResourceDirectory().add_wallet(uuid4(), usdc_address="not-an-address")


async def test_treasury_resources_belong_to_the_platform_customer() -> None:
    directory = InMemoryResourceDirectory()
    account = directory.add_treasury_account()
    wallet = directory.add_treasury_wallet(Network.POLYGON)

    assert await directory.treasury_account() == account
    assert await directory.treasury_wallet("polygon") == wallet
    assert await directory.treasury_wallet("ethereum") is None
    assert (account.customer_id, account.is_treasury, account.currency) == (
        PLATFORM_CUSTOMER_ID,
        True,
        "EUR",
    )
    assert (wallet.customer_id, wallet.is_treasury) == (PLATFORM_CUSTOMER_ID, True)


async def test_no_treasury_until_one_is_added() -> None:
    directory = InMemoryResourceDirectory()

    assert await directory.treasury_account() is None
    assert await directory.treasury_wallet("ethereum") is None


def test_second_treasury_account_or_wallet_on_a_network_is_refused() -> None:
    directory = InMemoryResourceDirectory()
    directory.add_treasury_account()
    directory.add_treasury_wallet(Network.ETHEREUM)
    directory.add_treasury_wallet(Network.SOLANA)

    with pytest.raises(ResourceConflictError):
        directory.add_treasury_account()
    with pytest.raises(ResourceConflictError):
        directory.add_treasury_wallet(Network.ETHEREUM)


def test_platform_customer_cannot_hold_ordinary_resources() -> None:
    directory = InMemoryResourceDirectory()

    with pytest.raises(InvalidResourceError):
        directory.add_account(PLATFORM_CUSTOMER_ID)
    with pytest.raises(InvalidResourceError):
        directory.add_wallet(PLATFORM_CUSTOMER_ID)


async def test_set_account_status_is_seen_by_later_lookups() -> None:
    directory = InMemoryResourceDirectory()
    account = directory.add_account(uuid4())

    directory.set_account_status(account.id, AccountStatus.INACTIVE)

    assert (await directory.accounts([account.id]))[account.id].status is AccountStatus.INACTIVE
    with pytest.raises(ResourceNotFoundError):
        directory.set_account_status(uuid4(), AccountStatus.ACTIVE)


def test_explicit_ids_are_kept_and_duplicates_refused() -> None:
    directory = InMemoryResourceDirectory()
    account_id = uuid4()

    assert directory.add_account(uuid4(), account_id=account_id).id == account_id
    with pytest.raises(ResourceConflictError):
        directory.add_account(uuid4(), account_id=account_id)
