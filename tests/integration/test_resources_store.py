"""The resource directory on the local PostgreSQL, one fresh database per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import psycopg
import pytest

from domain.resources import AccountStatus, is_eligible_account
from services.resources.port import (
    PLATFORM_CUSTOMER_ID,
    InvalidResourceError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings

pytestmark = pytest.mark.integration

IBAN_DE = "DE89370400440532013000"
IBAN_GB = "GB29NWBK60161331926819"
EVM_ADDRESS = "0x" + "ab" * 20
OTHER_EVM_ADDRESS = "0x" + "cd" * 20


@pytest.fixture
async def directory(settings: Settings) -> AsyncIterator[PostgresResourceDirectory]:
    async with PostgresResourceDirectory(settings) as directory:
        await directory.create_schema()
        yield directory


def table_count(settings: Settings, table: str) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(f"SELECT count(*) FROM resources.{table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


async def test_batch_lookups_return_known_ids_and_omit_unknown_ones(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")
    bob = await directory.create_customer("Bob")
    alice_account = (await directory.create_account(alice.id, name="Main", iban=IBAN_DE)).account
    bob_account = (await directory.create_account(bob.id, name="Ops", iban=IBAN_GB)).account
    wallet = await directory.create_wallet(
        alice.id, label="Cold", network="ethereum", usdc_address=EVM_ADDRESS
    )
    unknown = uuid4()

    accounts = await directory.accounts([alice_account.id, bob_account.id, unknown])
    wallets = await directory.wallets({wallet.id, unknown})

    assert accounts == {alice_account.id: alice_account, bob_account.id: bob_account}
    assert wallets == {wallet.id: wallet}
    assert await directory.accounts([]) == {}
    assert await directory.wallets([unknown]) == {}


async def test_lookups_carry_the_owner_and_the_eligibility_data(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")
    created = await directory.create_account(
        alice.id, name=" Savings ", iban=IBAN_DE, status=AccountStatus.INACTIVE
    )
    wallet = await directory.create_wallet(alice.id, label="Hot", network="solana")

    account = (await directory.accounts([created.account.id]))[created.account.id]
    found_wallet = (await directory.wallets([wallet.id]))[wallet.id]

    assert (account.customer_id, account.name, account.currency) == (alice.id, "Savings", "EUR")
    assert (account.status, account.iban_last4, account.is_treasury) == (
        AccountStatus.INACTIVE,
        "3000",
        False,
    )
    assert not is_eligible_account(account)
    assert (found_wallet.customer_id, found_wallet.network, found_wallet.usdc_address) == (
        alice.id,
        "solana",
        None,
    )


async def test_resources_of_a_customer_come_oldest_first_and_only_their_own(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")
    bob = await directory.create_customer("Bob")
    first = await directory.create_account(alice.id, name="first", iban=IBAN_DE)
    await directory.create_account(bob.id, name="bob's", iban=IBAN_GB)
    second = await directory.create_account(alice.id, name="second", iban=IBAN_GB, currency="usd")
    wallets = [
        await directory.create_wallet(alice.id, label=f"w{n}", network="polygon") for n in range(3)
    ]

    assert await directory.accounts_of(alice.id) == [first.account, second.account]
    assert second.account.currency == "USD"
    assert await directory.wallets_of(alice.id) == wallets
    assert await directory.wallets_of(bob.id) == []
    assert [c.name for c in await directory.list_customers()] == ["Alice", "Bob"]


async def test_only_a_masked_iban_is_stored(
    directory: PostgresResourceDirectory, settings: Settings
) -> None:
    alice = await directory.create_customer("Alice")
    record = await directory.create_account(
        alice.id, name="Main", iban="de89 3704 0044 0532 0130 00"
    )

    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute("SELECT row_to_json(a)::text FROM resources.fiat_accounts a").fetchall()

    assert record.iban_masked == "DE89 **** **** **** **** 3000"
    assert record.account.iban_last4 == "3000"
    assert len(rows) == 1
    assert "370400440532013000" not in rows[0][0]
    assert "DE89 **** **** **** **** 3000" in rows[0][0]


async def test_database_refuses_an_unmasked_iban_written_directly(
    directory: PostgresResourceDirectory, settings: Settings
) -> None:
    alice = await directory.create_customer("Alice")

    with (
        psycopg.connect(settings.conninfo()) as conn,
        pytest.raises(psycopg.errors.CheckViolation, match="fiat_accounts_iban_masked"),
    ):
        conn.execute(
            "INSERT INTO resources.fiat_accounts"
            " (id, customer_id, name, currency, iban_masked, iban_last4)"
            " VALUES (%s, %s, 'x', 'EUR', %s, '3000')",
            (uuid4(), alice.id, IBAN_DE),
        )


async def test_malformed_iban_is_refused_and_nothing_is_written(
    directory: PostgresResourceDirectory, settings: Settings
) -> None:
    alice = await directory.create_customer("Alice")

    with pytest.raises(InvalidResourceError, match="mod 97"):
        await directory.create_account(alice.id, name="Main", iban="DE89370400440532013001")

    assert table_count(settings, "fiat_accounts") == 0


async def test_resource_of_an_unknown_customer_is_refused(
    directory: PostgresResourceDirectory, settings: Settings
) -> None:
    stranger = uuid4()

    with pytest.raises(ResourceNotFoundError, match=str(stranger)):
        await directory.create_account(stranger, name="Main", iban=IBAN_DE)
    with pytest.raises(ResourceNotFoundError):
        await directory.create_wallet(stranger, label="Cold", network="ethereum")

    assert table_count(settings, "fiat_accounts") + table_count(settings, "wallets") == 0


async def test_treasury_is_owned_by_the_platform_customer_created_on_demand(
    directory: PostgresResourceDirectory,
) -> None:
    assert await directory.treasury_account() is None
    assert await directory.treasury_wallet("ethereum") is None

    account = (
        await directory.create_account(None, name="Treasury", iban=IBAN_DE, treasury=True)
    ).account
    ethereum = await directory.create_wallet(
        None, label="ETH treasury", network="ethereum", usdc_address=EVM_ADDRESS, treasury=True
    )
    polygon = await directory.create_wallet(
        PLATFORM_CUSTOMER_ID,
        label="Polygon treasury",
        network="polygon",
        usdc_address=EVM_ADDRESS,
        treasury=True,
    )

    assert await directory.treasury_account() == account
    assert await directory.treasury_wallet("ethereum") == ethereum
    assert await directory.treasury_wallet("polygon") == polygon
    assert await directory.treasury_wallet("solana") is None
    assert {account.customer_id, ethereum.customer_id} == {PLATFORM_CUSTOMER_ID}
    assert account.is_treasury
    assert ethereum.is_treasury
    assert [c.id for c in await directory.list_customers()] == [PLATFORM_CUSTOMER_ID]


async def test_second_treasury_account_or_wallet_on_a_network_is_a_conflict(
    directory: PostgresResourceDirectory,
) -> None:
    await directory.create_account(None, name="Treasury", iban=IBAN_DE, treasury=True)
    await directory.create_wallet(
        None, label="T", network="ethereum", usdc_address=EVM_ADDRESS, treasury=True
    )

    with pytest.raises(ResourceConflictError, match="treasury account already exists"):
        await directory.create_account(None, name="Again", iban=IBAN_GB, treasury=True)
    with pytest.raises(ResourceConflictError, match="treasury wallet already exists"):
        await directory.create_wallet(
            None, label="T2", network="ethereum", usdc_address=OTHER_EVM_ADDRESS, treasury=True
        )


async def test_treasury_account_belongs_to_the_platform_and_is_in_eur(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")

    with pytest.raises(InvalidResourceError, match="belong to the platform customer"):
        await directory.create_account(alice.id, name="T", iban=IBAN_DE, treasury=True)
    with pytest.raises(InvalidResourceError, match="must be in EUR"):
        await directory.create_account(None, name="T", iban=IBAN_DE, currency="USD", treasury=True)

    assert await directory.treasury_account() is None


async def test_treasury_wallet_belongs_to_the_platform_and_has_an_address(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")

    with pytest.raises(InvalidResourceError, match="belong to the platform customer"):
        await directory.create_wallet(
            alice.id, label="T", network="ethereum", usdc_address=EVM_ADDRESS, treasury=True
        )
    with pytest.raises(InvalidResourceError, match="needs a usdc address"):
        await directory.create_wallet(None, label="T", network="ethereum", treasury=True)

    assert await directory.treasury_wallet("ethereum") is None


async def test_platform_customer_holds_no_ordinary_resources(
    directory: PostgresResourceDirectory,
) -> None:
    with pytest.raises(InvalidResourceError, match="treasury resources only"):
        await directory.create_account(PLATFORM_CUSTOMER_ID, name="x", iban=IBAN_DE)
    with pytest.raises(InvalidResourceError, match="customer is required"):
        await directory.create_wallet(None, label="x", network="ethereum")


async def test_an_address_is_held_by_one_wallet_per_network(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")
    bob = await directory.create_customer("Bob")
    await directory.create_wallet(alice.id, label="a", network="ethereum", usdc_address=EVM_ADDRESS)

    with pytest.raises(ResourceConflictError, match="already has this address"):
        await directory.create_wallet(
            bob.id,
            label="b",
            network="ethereum",
            usdc_address=EVM_ADDRESS.upper().replace("X", "x"),
        )
    on_polygon = await directory.create_wallet(
        bob.id, label="b", network="polygon", usdc_address=EVM_ADDRESS
    )

    assert on_polygon.usdc_address == EVM_ADDRESS


async def test_unknown_network_is_refused(directory: PostgresResourceDirectory) -> None:
    alice = await directory.create_customer("Alice")

    with pytest.raises(InvalidResourceError, match="network must be one of"):
        await directory.create_wallet(alice.id, label="a", network="bitcoin")


async def test_account_status_change_is_seen_by_lookups(
    directory: PostgresResourceDirectory,
) -> None:
    alice = await directory.create_customer("Alice")
    created = await directory.create_account(alice.id, name="Main", iban=IBAN_DE)

    updated = await directory.set_account_status(created.account.id, AccountStatus.INACTIVE)
    found = await directory.accounts([created.account.id])

    assert updated.account.status is AccountStatus.INACTIVE
    assert found[created.account.id].status is AccountStatus.INACTIVE
    with pytest.raises(ResourceNotFoundError):
        await directory.set_account_status(uuid4(), AccountStatus.ACTIVE)


async def test_blank_names_are_refused(directory: PostgresResourceDirectory) -> None:
    with pytest.raises(InvalidResourceError, match="name must not be empty"):
        await directory.create_customer("   ")


async def test_create_schema_is_idempotent_and_safe_concurrently(settings: Settings) -> None:
    directories = [PostgresResourceDirectory(settings) for _ in range(3)]
    for directory in directories:
        await directory.open()
    try:
        await asyncio.gather(*(directory.create_schema() for directory in directories))
        alice = await directories[0].create_customer("Alice")
        await directories[1].create_schema()

        assert [c.id for c in await directories[2].list_customers()] == [alice.id]
    finally:
        for directory in directories:
            await directory.close()


async def test_nothing_connects_before_open() -> None:
    directory = PostgresResourceDirectory(Settings(pg_port=1, pg_password="unused"))

    with pytest.raises(RuntimeError, match="not open"):
        await directory.accounts([uuid4()])
