"""The core-banking sandbox: idempotent EUR transfers, insufficient funds, conservation, faults."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.local.sandbox.bank import create_app
from services.settings import Settings
from tests.integration.sandboxes import fund_account, in_process, set_faults, totals

pytestmark = pytest.mark.integration


@pytest.fixture
async def bank(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(settings)) as client:
        yield client


async def balance(bank: httpx.AsyncClient, account: UUID) -> Decimal:
    response = await bank.get(f"/accounts/{account}")
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"])


def transfer(reference: str, source: UUID, destination: UUID, amount: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "fromAccount": str(source),
        "toAccount": str(destination),
        "amount": amount,
    }


async def funded(bank: httpx.AsyncClient, *amounts: str) -> list[UUID]:
    accounts = [uuid.uuid4() for _ in amounts]
    for account, amount in zip(accounts, amounts, strict=True):
        await fund_account(bank, account, amount)
    return accounts


async def test_transfer_moves_eur_between_accounts(bank: httpx.AsyncClient) -> None:
    customer, treasury = await funded(bank, "100.00", "0")

    response = await bank.post("/transfers", json=transfer("o1:debit", customer, treasury, "30.25"))

    assert response.status_code == 201
    body = response.json()
    assert body["reference"] == "o1:debit"
    assert body["bankReference"].startswith("BNK")
    assert (body["amount"], body["currency"], body["status"]) == ("30.25", "EUR", "BOOKED")
    assert await balance(bank, customer) == Decimal("69.75")
    assert await balance(bank, treasury) == Decimal("30.25")


async def test_repeated_reference_returns_the_original_and_moves_nothing(
    bank: httpx.AsyncClient,
) -> None:
    customer, treasury = await funded(bank, "100.00", "0")
    request = transfer("o2:debit", customer, treasury, "40.00")

    first = await bank.post("/transfers", json=request)
    again = await bank.post("/transfers", json=request)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert await balance(bank, customer) == Decimal("60.00")


async def test_reference_reused_for_another_transfer_is_a_conflict(
    bank: httpx.AsyncClient,
) -> None:
    customer, treasury = await funded(bank, "100.00", "0")
    await bank.post("/transfers", json=transfer("o3:debit", customer, treasury, "40.00"))

    response = await bank.post("/transfers", json=transfer("o3:debit", customer, treasury, "41.00"))

    assert response.status_code == 409
    assert response.json()["code"] == "REFERENCE_CONFLICT"
    assert await balance(bank, customer) == Decimal("60.00")


async def test_insufficient_funds_is_permanent_and_moves_nothing(bank: httpx.AsyncClient) -> None:
    customer, treasury = await funded(bank, "10.00", "5.00")

    refused = await bank.post("/transfers", json=transfer("o4:debit", customer, treasury, "10.01"))
    lookup = await bank.get("/transfers/o4:debit")

    assert refused.status_code == 422
    assert refused.json()["code"] == "INSUFFICIENT_FUNDS"
    assert lookup.status_code == 404
    assert await balance(bank, customer) == Decimal("10.00")
    assert await balance(bank, treasury) == Decimal("5.00")


async def test_a_refused_reference_stays_refused_after_funding(bank: httpx.AsyncClient) -> None:
    customer, treasury = await funded(bank, "10.00", "0")
    first = await bank.post("/transfers", json=transfer("o9:debit", customer, treasury, "20.00"))
    await bank.post(f"/admin/accounts/{customer}/fund", json={"amount": "50.00"})

    again = await bank.post("/transfers", json=transfer("o9:debit", customer, treasury, "20.00"))

    assert (first.status_code, again.status_code) == (422, 422)
    assert again.json()["code"] == "INSUFFICIENT_FUNDS"
    assert await balance(bank, customer) == Decimal("60.00")


async def test_the_whole_balance_can_be_moved(bank: httpx.AsyncClient) -> None:
    customer, treasury = await funded(bank, "10.00", "0")

    response = await bank.post("/transfers", json=transfer("o5:debit", customer, treasury, "10"))

    assert response.status_code == 201
    assert await balance(bank, customer) == Decimal("0.00")


@pytest.mark.parametrize(
    ("amount", "code"),
    [("1.001", "INVALID_AMOUNT"), ("0", "INVALID_AMOUNT"), ("-1.00", "INVALID_AMOUNT")],
)
async def test_invalid_amounts_are_refused(bank: httpx.AsyncClient, amount: str, code: str) -> None:
    customer, treasury = await funded(bank, "10.00", "0")

    response = await bank.post("/transfers", json=transfer("o6:x", customer, treasury, amount))

    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_unknown_account_is_not_found(bank: httpx.AsyncClient) -> None:
    (customer,) = await funded(bank, "10.00")

    response = await bank.post("/transfers", json=transfer("o7:x", customer, uuid.uuid4(), "1.00"))
    read = await bank.get(f"/accounts/{uuid.uuid4()}")

    assert (response.status_code, response.json()["code"]) == (404, "ACCOUNT_NOT_FOUND")
    assert (read.status_code, read.json()["code"]) == (404, "ACCOUNT_NOT_FOUND")
    assert await balance(bank, customer) == Decimal("10.00")


async def test_same_account_on_both_sides_is_refused(bank: httpx.AsyncClient) -> None:
    (customer,) = await funded(bank, "10.00")

    response = await bank.post("/transfers", json=transfer("o8:x", customer, customer, "1.00"))

    assert (response.status_code, response.json()["code"]) == (400, "SAME_ACCOUNT")


async def test_funding_with_a_reference_happens_once(bank: httpx.AsyncClient) -> None:
    account = uuid.uuid4()
    body = {"amount": "25.00", "reference": "seed-1"}

    await bank.post(f"/admin/accounts/{account}/fund", json=body)
    await bank.post(f"/admin/accounts/{account}/fund", json=body)

    assert await balance(bank, account) == Decimal("25.00")


async def test_a_funding_reference_reused_with_another_amount_is_a_conflict(
    bank: httpx.AsyncClient,
) -> None:
    account = uuid.uuid4()
    await bank.post(f"/admin/accounts/{account}/fund", json={"amount": "25.00", "reference": "s2"})

    response = await bank.post(
        f"/admin/accounts/{account}/fund", json={"amount": "26.00", "reference": "s2"}
    )

    assert (response.status_code, response.json()["code"]) == (409, "REFERENCE_CONFLICT")
    assert await balance(bank, account) == Decimal("25.00")


async def test_concurrent_repeats_of_one_reference_book_it_once(bank: httpx.AsyncClient) -> None:
    customer, treasury = await funded(bank, "100.00", "0")
    request = transfer("o9:debit", customer, treasury, "60.00")

    responses = await asyncio.gather(*(bank.post("/transfers", json=request) for _ in range(8)))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["bankReference"] for r in responses}) == 1
    assert await balance(bank, customer) == Decimal("40.00")


async def test_concurrent_transfers_conserve_money(bank: httpx.AsyncClient) -> None:
    accounts = await funded(bank, "100.00", "50.00", "25.00", "0")
    draws = random.Random(11)
    requests = []
    for number in range(60):
        source, destination = draws.sample(accounts, 2)
        amount = str(Decimal(draws.randint(1, 4000)).scaleb(-2))
        requests.append(transfer(f"mix:{number}", source, destination, amount))

    responses = await asyncio.gather(*(bank.post("/transfers", json=r) for r in requests))
    total = await totals(bank)

    assert {r.status_code for r in responses} <= {201, 422}
    assert any(r.status_code == 201 for r in responses)
    assert total == {"currency": "EUR", "accounts": 4, "balance": "175.00", "funded": "175.00"}
    assert sum([await balance(bank, a) for a in accounts], Decimal(0)) == Decimal("175.00")


async def test_injected_failures_happen_before_any_change(bank: httpx.AsyncClient) -> None:
    customer, treasury = await funded(bank, "100.00", "0")
    await set_faults(bank, failRate=1.0, failStatus=500)

    failed = await bank.post("/transfers", json=transfer("f1", customer, treasury, "10.00"))
    await bank.delete("/admin/faults")

    assert (failed.status_code, failed.json()["code"]) == (500, "INJECTED_FAILURE")
    assert (await bank.get("/transfers/f1")).status_code == 404
    assert await balance(bank, customer) == Decimal("100.00")


async def test_a_lost_response_was_booked_and_its_retry_moves_nothing(
    bank: httpx.AsyncClient,
) -> None:
    customer, treasury = await funded(bank, "100.00", "0")
    request = transfer("f2", customer, treasury, "10.00")
    await set_faults(bank, failAfterCommitRate=1.0)

    lost = await bank.post("/transfers", json=request)
    await bank.delete("/admin/faults")
    retried = await bank.post("/transfers", json=request)

    assert lost.status_code == 503
    assert retried.status_code == 200
    assert await balance(bank, customer) == Decimal("90.00")


async def test_a_fail_rate_fails_about_that_share_of_calls(bank: httpx.AsyncClient) -> None:
    (account,) = await funded(bank, "1.00")
    await set_faults(bank, failRate=0.3, seed=5)

    statuses = [(await bank.get(f"/accounts/{account}")).status_code for _ in range(100)]

    assert 15 <= statuses.count(503) <= 45
    assert statuses.count(200) == 100 - statuses.count(503)


async def test_down_refuses_every_call_but_admin_and_health(bank: httpx.AsyncClient) -> None:
    (account,) = await funded(bank, "1.00")
    await set_faults(bank, down=True)

    read = await bank.get(f"/accounts/{account}")
    health = await bank.get("/health")
    admin = await bank.get("/admin/totals")
    await bank.delete("/admin/faults")
    after = await bank.get(f"/accounts/{account}")

    assert (read.status_code, read.json()["code"]) == (503, "SERVICE_DOWN")
    assert (health.status_code, admin.status_code, after.status_code) == (200, 200, 200)


async def test_latency_delays_calls(bank: httpx.AsyncClient) -> None:
    (account,) = await funded(bank, "1.00")
    await set_faults(bank, latencyMs=200)

    started = time.monotonic()
    response = await bank.get(f"/accounts/{account}")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.2


async def test_fault_settings_are_validated_and_reset(bank: httpx.AsyncClient) -> None:
    invalid = await bank.post("/admin/faults", json={"failRate": 1.5})
    await set_faults(bank, failRate=0.5, down=True)
    reset = await bank.delete("/admin/faults")

    assert (invalid.status_code, invalid.json()["code"]) == (400, "VALIDATION_ERROR")
    assert reset.json()["failRate"] == 0
    assert reset.json()["down"] is False
    assert (await bank.get("/admin/faults")).json() == reset.json()
