"""`otc resources` against a fresh database of each test's own."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from services.resources.port import PLATFORM_CUSTOMER_ID
from services.settings import Settings

pytestmark = pytest.mark.integration

IBAN_DE = "DE89370400440532013000"
EVM_ADDRESS = "0x" + "ab" * 20
REFUSED = 2

Otc = Callable[..., Result]
Json = dict[str, Any]


@pytest.fixture
def otc(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Otc:
    monkeypatch.setenv("OTC_PG_DBNAME", settings.pg_dbname)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["resources", *args])

    return run


def ok(result: Result) -> Json:
    assert result.exit_code == 0, result.stderr
    document: Json = json.loads(result.stdout)
    return document


def ok_list(result: Result) -> list[Json]:
    assert result.exit_code == 0, result.stderr
    documents: list[Json] = json.loads(result.stdout)
    return documents


def new_customer(otc: Otc, name: str = "Alice") -> str:
    customer_id: str = ok(otc("create-customer", "--name", name))["id"]
    return customer_id


def test_account_is_printed_in_camel_case_with_a_masked_iban(otc: Otc) -> None:
    customer = new_customer(otc)

    result = otc("create-account", "--customer", customer, "--name", "Main", "--iban", IBAN_DE)
    account = ok(result)

    assert account == {
        "id": account["id"],
        "customerId": customer,
        "name": "Main",
        "currency": "EUR",
        "status": "active",
        "ibanLast4": "3000",
        "ibanMasked": "DE89 **** **** **** **** 3000",
        "isTreasury": False,
    }
    assert "0532013000" not in result.stdout


def test_lists_are_filtered_by_customer_in_creation_order(otc: Otc) -> None:
    alice, bob = new_customer(otc, "Alice"), new_customer(otc, "Bob")
    first = ok(otc("create-account", "--customer", alice, "--name", "A1", "--iban", IBAN_DE))
    ok(otc("create-account", "--customer", bob, "--name", "B1", "--iban", IBAN_DE))
    second = ok(
        otc("create-account", "--customer", alice, "--name", "A2", "--iban", IBAN_DE, "--inactive")
    )
    wallet = ok(
        otc(
            "create-wallet",
            "--customer",
            alice,
            "--label",
            "Cold",
            "--network",
            "polygon",
            "--address",
            EVM_ADDRESS,
        ),
    )

    assert ok_list(otc("list-accounts", "--customer", alice)) == [first, second]
    assert second["status"] == "inactive"
    assert len(ok_list(otc("list-accounts"))) == 3
    assert ok_list(otc("list-wallets", "--customer", alice)) == [wallet]
    assert ok_list(otc("list-wallets", "--customer", bob)) == []
    assert [c["name"] for c in ok_list(otc("list-customers"))] == ["Alice", "Bob"]


def test_wallet_without_an_address_is_printed_with_null(otc: Otc) -> None:
    customer = new_customer(otc)

    wallet = ok(
        otc("create-wallet", "--customer", customer, "--label", "New", "--network", "solana")
    )

    assert {k: wallet[k] for k in ("customerId", "label", "network", "usdcAddress")} == {
        "customerId": customer,
        "label": "New",
        "network": "solana",
        "usdcAddress": None,
    }


def test_treasury_resources_are_created_for_the_platform_customer(otc: Otc) -> None:
    account = ok(otc("create-account", "--treasury", "--name", "Treasury", "--iban", IBAN_DE))
    wallet = ok(
        otc(
            "create-wallet",
            "--treasury",
            "--label",
            "ETH treasury",
            "--network",
            "ethereum",
            "--address",
            EVM_ADDRESS,
        ),
    )

    assert (account["customerId"], account["isTreasury"]) == (str(PLATFORM_CUSTOMER_ID), True)
    assert (wallet["customerId"], wallet["isTreasury"]) == (str(PLATFORM_CUSTOMER_ID), True)


def test_second_treasury_account_exits_2_with_the_reason(otc: Otc) -> None:
    ok(otc("create-account", "--treasury", "--name", "Treasury", "--iban", IBAN_DE))

    result = otc("create-account", "--treasury", "--name", "Again", "--iban", IBAN_DE)

    assert result.exit_code == REFUSED
    assert "treasury account already exists" in result.stderr
    assert len(ok_list(otc("list-accounts"))) == 1


def test_set_account_status_prints_the_updated_account(otc: Otc) -> None:
    customer = new_customer(otc)
    account = ok(otc("create-account", "--customer", customer, "--name", "M", "--iban", IBAN_DE))

    updated = ok(otc("set-account-status", account["id"], "inactive"))

    assert updated == {**account, "status": "inactive"}
    assert ok_list(otc("list-accounts"))[0]["status"] == "inactive"


def test_bad_iban_exits_2_without_echoing_it_and_writes_nothing(otc: Otc) -> None:
    customer = new_customer(otc)

    result = otc(
        "create-account", "--customer", customer, "--name", "M", "--iban", "DE89370400440532013001"
    )

    assert result.exit_code == REFUSED
    assert "mod 97" in result.stderr
    assert "0532013001" not in result.stderr + result.stdout
    assert ok_list(otc("list-accounts")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-customer", "--name", " "], "name must not be empty"),
        (["set-account-status", str(uuid4()), "inactive"], "not found"),
        (["create-account", "--name", "M", "--iban", IBAN_DE], "customer is required"),
        (
            ["create-account", "--customer", str(uuid4()), "--name", "M", "--iban", IBAN_DE],
            "not found",
        ),
        (
            ["create-wallet", "--customer", str(uuid4()), "--label", "L", "--network", "ethereum"],
            "not found",
        ),
        (
            [
                "create-wallet",
                "--treasury",
                "--label",
                "L",
                "--network",
                "ethereum",
                "--address",
                "0x1",
            ],
            "not a valid ethereum address",
        ),
        (["create-wallet", "--label", "L", "--network", "bitcoin"], "bitcoin"),
        (["set-account-status", "not-a-uuid", "inactive"], "valid UUID"),
        (["set-account-status", str(uuid4()), "closed"], "closed"),
    ],
)
def test_bad_input_exits_2_with_a_message_on_stderr(
    otc: Otc, args: list[str], message: str
) -> None:
    result = otc(*args)

    assert result.exit_code == REFUSED
    assert message in result.stderr
    assert result.stdout == ""


def test_missing_database_password_exits_2_naming_the_setting(
    otc: Otc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTC_PG_PASSWORD")

    result = otc("list-customers")

    assert result.exit_code == REFUSED
    assert "OTC_PG_PASSWORD" in result.stderr
