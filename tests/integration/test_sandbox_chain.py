"""The chain sandbox: USDC per network and address, idempotent transfers with transaction hashes,
live balances, conservation, faults."""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.local.sandbox.chain import create_app
from services.local.sandbox.chain_ledger import ChainConfig, base58
from services.settings import Settings
from tests.integration.sandboxes import fund_wallet, in_process, set_faults, totals

pytestmark = pytest.mark.integration

EVM_HASH = re.compile(r"^0x[0-9a-f]{64}$")
BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]+$")


def evm_address() -> str:
    return "0x" + secrets.token_hex(20)


def solana_address() -> str:
    return base58(secrets.token_bytes(32))


def address_on(network: str) -> str:
    return solana_address() if network == "solana" else evm_address()


@pytest.fixture
async def chain(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(settings)) as client:
        yield client


async def balance(chain: httpx.AsyncClient, network: str, address: str) -> Decimal:
    response = await chain.get(f"/balances/{network}/{address}")
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"])


def transfer(
    reference: str, network: str, source: str, destination: str, amount: str
) -> dict[str, Any]:
    return {
        "reference": reference,
        "network": network,
        "fromAddress": source,
        "toAddress": destination,
        "amount": amount,
    }


@pytest.mark.parametrize("network", ["ethereum", "polygon", "solana"])
async def test_transfer_moves_usdc_and_returns_a_transaction_hash(
    chain: httpx.AsyncClient, network: str
) -> None:
    customer, treasury = address_on(network), address_on(network)
    await fund_wallet(chain, network, customer, "250.000000")

    response = await chain.post(
        "/transfers", json=transfer("o1:payout", network, customer, treasury, "100.5")
    )

    assert response.status_code == 201
    body = response.json()
    tx_hash = body["transactionHash"]
    assert EVM_HASH.match(tx_hash) if network != "solana" else BASE58.match(tx_hash)
    assert (body["amount"], body["currency"], body["status"]) == ("100.500000", "USDC", "CONFIRMED")
    assert await balance(chain, network, customer) == Decimal("149.5")
    assert await balance(chain, network, treasury) == Decimal("100.5")


async def test_repeated_reference_returns_the_same_hash_and_moves_nothing(
    chain: httpx.AsyncClient,
) -> None:
    customer, treasury = evm_address(), evm_address()
    await fund_wallet(chain, "ethereum", customer, "10")
    request = transfer("o2:payout", "ethereum", customer, treasury, "4")

    first = await chain.post("/transfers", json=request)
    again = await chain.post("/transfers", json=request)
    lookup = await chain.get("/transfers/o2:payout")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["transactionHash"] == first.json()["transactionHash"]
    assert lookup.json() == first.json()
    assert await balance(chain, "ethereum", customer) == Decimal(6)


async def test_reference_reused_for_another_transfer_is_a_conflict(
    chain: httpx.AsyncClient,
) -> None:
    customer, treasury = evm_address(), evm_address()
    await fund_wallet(chain, "polygon", customer, "10")
    await chain.post("/transfers", json=transfer("o3", "polygon", customer, treasury, "4"))

    response = await chain.post(
        "/transfers", json=transfer("o3", "polygon", customer, evm_address(), "4")
    )

    assert (response.status_code, response.json()["code"]) == (409, "REFERENCE_CONFLICT")


async def test_insufficient_balance_is_permanent_and_moves_nothing(
    chain: httpx.AsyncClient,
) -> None:
    customer, treasury = evm_address(), evm_address()
    await fund_wallet(chain, "ethereum", customer, "1.000000")

    refused = await chain.post(
        "/transfers", json=transfer("o4", "ethereum", customer, treasury, "1.000001")
    )
    never_funded = await chain.post(
        "/transfers", json=transfer("o5", "ethereum", evm_address(), treasury, "1")
    )

    assert (refused.status_code, refused.json()["code"]) == (422, "INSUFFICIENT_FUNDS")
    assert (never_funded.status_code, never_funded.json()["code"]) == (422, "INSUFFICIENT_FUNDS")
    assert await balance(chain, "ethereum", customer) == Decimal(1)
    assert await balance(chain, "ethereum", treasury) == 0


async def test_balances_are_kept_per_network(chain: httpx.AsyncClient) -> None:
    address = evm_address()
    await fund_wallet(chain, "ethereum", address, "5")

    assert await balance(chain, "ethereum", address) == Decimal(5)
    assert await balance(chain, "polygon", address) == 0


async def test_an_address_never_seen_has_a_zero_balance(chain: httpx.AsyncClient) -> None:
    response = await chain.get(f"/balances/solana/{solana_address()}")

    assert response.status_code == 200
    assert response.json()["balance"] == "0.000000"
    assert response.json()["currency"] == "USDC"


async def test_evm_addresses_are_case_insensitive(chain: httpx.AsyncClient) -> None:
    address = "0x" + "ab" * 20
    await fund_wallet(chain, "ethereum", address.upper().replace("0X", "0x"), "3")

    assert await balance(chain, "ethereum", address) == Decimal(3)


@pytest.mark.parametrize(
    ("network", "address", "code"),
    [
        ("bitcoin", "0x" + "ab" * 20, "UNSUPPORTED_NETWORK"),
        ("ethereum", "0x1234", "INVALID_ADDRESS"),
        ("solana", "0x" + "ab" * 20, "INVALID_ADDRESS"),
        ("polygon", "not-an-address", "INVALID_ADDRESS"),
    ],
)
async def test_unknown_networks_and_invalid_addresses_are_refused(
    chain: httpx.AsyncClient, network: str, address: str, code: str
) -> None:
    read = await chain.get(f"/balances/{network}/{address}")
    sent = await chain.post(
        "/transfers", json=transfer("bad", network, address, address_on("ethereum"), "1")
    )

    assert (read.status_code, read.json()["code"]) == (400, code)
    assert (sent.status_code, sent.json()["code"]) == (400, code)


async def test_amount_with_more_than_six_places_is_refused(chain: httpx.AsyncClient) -> None:
    customer = evm_address()
    await fund_wallet(chain, "ethereum", customer, "5")

    response = await chain.post(
        "/transfers", json=transfer("o6", "ethereum", customer, evm_address(), "1.0000001")
    )

    assert (response.status_code, response.json()["code"]) == (400, "INVALID_AMOUNT")


async def test_networks_are_configurable(settings: Settings) -> None:
    app = create_app(settings, ChainConfig(networks=("ethereum", "base")))
    async with in_process(app) as client:
        base = await client.get(f"/balances/base/{evm_address()}")
        solana = await client.get(f"/balances/solana/{solana_address()}")

    assert base.status_code == 200
    assert solana.json()["code"] == "UNSUPPORTED_NETWORK"


async def test_concurrent_transfers_conserve_money_per_network(chain: httpx.AsyncClient) -> None:
    wallets = {
        network: [address_on(network) for _ in range(3)] for network in ("ethereum", "solana")
    }
    for network, addresses in wallets.items():
        for address in addresses:
            await fund_wallet(chain, network, address, "40.000000")
    draws = random.Random(3)
    requests = []
    for number in range(60):
        network = draws.choice(sorted(wallets))
        source, destination = draws.sample(wallets[network], 2)
        amount = str(Decimal(draws.randint(1, 30_000_000)).scaleb(-6))
        requests.append(transfer(f"mix:{number}", network, source, destination, amount))

    responses = await asyncio.gather(*(chain.post("/transfers", json=r) for r in requests))
    total = await totals(chain)

    assert {r.status_code for r in responses} <= {201, 422}
    assert any(r.status_code == 201 for r in responses)
    assert total["balance"] == total["funded"] == "240.000000"
    by_network = {n["network"]: n for n in total["networks"]}
    assert by_network["ethereum"]["balance"] == by_network["ethereum"]["funded"] == "120.000000"
    assert by_network["solana"]["balance"] == by_network["solana"]["funded"] == "120.000000"
    assert by_network["polygon"]["balance"] == "0.000000"


async def test_concurrent_repeats_of_one_reference_send_once(chain: httpx.AsyncClient) -> None:
    customer, treasury = evm_address(), evm_address()
    await fund_wallet(chain, "ethereum", customer, "10")
    request = transfer("o7", "ethereum", customer, treasury, "7")

    responses = await asyncio.gather(*(chain.post("/transfers", json=request) for _ in range(8)))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["transactionHash"] for r in responses}) == 1
    assert await balance(chain, "ethereum", customer) == Decimal(3)


async def test_down_makes_balance_reads_fail(chain: httpx.AsyncClient) -> None:
    await set_faults(chain, down=True)

    response = await chain.get(f"/balances/ethereum/{evm_address()}")

    assert (response.status_code, response.json()["code"]) == (503, "SERVICE_DOWN")


async def test_a_lost_response_was_sent_and_its_retry_moves_nothing(
    chain: httpx.AsyncClient,
) -> None:
    customer, treasury = evm_address(), evm_address()
    await fund_wallet(chain, "ethereum", customer, "10")
    request = transfer("o8", "ethereum", customer, treasury, "2")
    await set_faults(chain, failAfterCommitRate=1.0, failStatus=502)

    lost = await chain.post("/transfers", json=request)
    await chain.delete("/admin/faults")
    retried = await chain.post("/transfers", json=request)

    assert (lost.status_code, lost.json()["code"]) == (502, "INJECTED_FAILURE")
    assert retried.status_code == 200
    assert await balance(chain, "ethereum", customer) == Decimal(8)
