"""`HttpLedger` over real HTTP against the core-banking sandbox: a reference moves money once,
whatever fails on the way; permanent refusals surface as such."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from services.adapters.bank import HttpLedger
from services.adapters.http import RetryPolicy, upstream_client
from services.adapters.ports import (
    MovementRefusedError,
    MovementUnknownError,
    UpstreamRejectedError,
)
from services.local.sandbox.bank import create_app
from services.settings import Settings
from tests.integration.sandboxes import FAST_RETRY, fund_account, over_http, set_faults, totals

pytestmark = pytest.mark.integration


@dataclass
class Bank:
    admin: httpx.AsyncClient
    ledger: HttpLedger
    customer: UUID
    treasury: UUID

    async def balance(self, account: UUID) -> Decimal:
        response = await self.admin.get(f"/accounts/{account}")
        assert response.status_code == 200, response.text
        return Decimal(response.json()["balance"])


@pytest.fixture
async def bank(settings: Settings) -> AsyncIterator[Bank]:
    async with (
        over_http(create_app(settings)) as (url, admin),
        upstream_client(url, timeout_seconds=settings.upstream_timeout_seconds) as client,
    ):
        customer, treasury = uuid.uuid4(), uuid.uuid4()
        await fund_account(admin, customer, "100.00")
        await fund_account(admin, treasury, "0")
        yield Bank(admin, HttpLedger(client, retry=FAST_RETRY), customer, treasury)


async def test_transfer_moves_money_and_returns_the_bank_reference(bank: Bank) -> None:
    done = await bank.ledger.transfer(
        reference="order-1:debit",
        from_account=bank.customer,
        to_account=bank.treasury,
        amount=Decimal("25.50"),
    )

    assert done.reference == "order-1:debit"
    assert done.external_id.startswith("BNK")
    assert await bank.balance(bank.customer) == Decimal("74.50")
    assert await bank.balance(bank.treasury) == Decimal("25.50")


async def test_retrying_a_reference_returns_the_same_transfer_and_moves_nothing(
    bank: Bank,
) -> None:
    first, again = [
        await bank.ledger.transfer(
            reference="order-2:debit",
            from_account=bank.customer,
            to_account=bank.treasury,
            amount=Decimal("10.00"),
        )
        for _ in range(2)
    ]

    assert again == first
    assert await bank.balance(bank.customer) == Decimal("90.00")


async def test_transfers_through_failures_and_lost_responses_move_money_exactly_once(
    bank: Bank,
) -> None:
    await set_faults(bank.admin, failRate=0.2, failAfterCommitRate=0.2, seed=9)

    done = [
        await bank.ledger.transfer(
            reference=f"order-{n}:debit",
            from_account=bank.customer,
            to_account=bank.treasury,
            amount=Decimal("1.00"),
        )
        for n in range(15)
    ]
    await bank.admin.delete("/admin/faults")

    assert len({d.external_id for d in done}) == 15
    assert await bank.balance(bank.customer) == Decimal("85.00")
    assert await bank.balance(bank.treasury) == Decimal("15.00")
    assert (await totals(bank.admin))["balance"] == "100.00"


async def test_insufficient_funds_surfaces_as_a_permanent_refusal(bank: Bank) -> None:
    with pytest.raises(UpstreamRejectedError) as refused:
        await bank.ledger.transfer(
            reference="order-3:debit",
            from_account=bank.customer,
            to_account=bank.treasury,
            amount=Decimal("100.01"),
        )

    assert refused.value.code == "INSUFFICIENT_FUNDS"
    assert await bank.balance(bank.customer) == Decimal("100.00")


async def test_a_closed_account_is_a_refusal_that_moves_nothing(bank: Bank) -> None:
    assert (await bank.admin.post(f"/admin/accounts/{bank.customer}/close")).is_success

    with pytest.raises(MovementRefusedError) as refused:
        await bank.ledger.transfer(
            reference="order-3b:refund-1",
            from_account=bank.treasury,
            to_account=bank.customer,
            amount=Decimal("1.00"),
        )

    assert refused.value.code == "ACCOUNT_CLOSED"
    assert await bank.ledger.find_transfer("order-3b:refund-1") is None


async def test_a_reference_reused_for_another_amount_is_an_unknown_outcome_not_a_refusal(
    bank: Bank,
) -> None:
    first = await bank.ledger.transfer(
        reference="order-4:debit",
        from_account=bank.customer,
        to_account=bank.treasury,
        amount=Decimal("1.00"),
    )

    with pytest.raises(MovementUnknownError, match="409 REFERENCE_CONFLICT"):
        await bank.ledger.transfer(
            reference="order-4:debit",
            from_account=bank.customer,
            to_account=bank.treasury,
            amount=Decimal("2.00"),
        )

    assert await bank.ledger.find_transfer("order-4:debit") == first


@pytest.mark.parametrize("fault", ["garbledRate", "conflictRate"])
async def test_an_answer_that_says_nothing_is_unknown_and_the_transfer_reads_back(
    bank: Bank, fault: str
) -> None:
    await set_faults(bank.admin, **{fault: 1.0})

    with pytest.raises(MovementUnknownError):
        await bank.ledger.transfer(
            reference="order-4b:debit",
            from_account=bank.customer,
            to_account=bank.treasury,
            amount=Decimal("3.00"),
        )
    found = await bank.ledger.find_transfer("order-4b:debit")
    await bank.admin.delete("/admin/faults")

    assert found is not None
    assert (found.source, found.target, found.amount) == (
        str(bank.customer),
        str(bank.treasury),
        Decimal("3.00"),
    )
    assert [t.reference async for t in bank.ledger.statement()] == ["order-4b:debit"]


async def test_an_outage_is_an_unknown_outcome_and_moves_nothing(bank: Bank) -> None:
    await set_faults(bank.admin, down=True)

    with pytest.raises(MovementUnknownError):
        await bank.ledger.transfer(
            reference="order-5:debit",
            from_account=bank.customer,
            to_account=bank.treasury,
            amount=Decimal("1.00"),
        )
    await bank.admin.delete("/admin/faults")

    assert await bank.balance(bank.customer) == Decimal("100.00")


async def test_a_bank_that_does_not_listen_is_an_unknown_outcome() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with upstream_client(f"http://127.0.0.1:{port}", timeout_seconds=1) as client:
        ledger = HttpLedger(client, retry=RetryPolicy(max_attempts=2, base_delay_seconds=0.001))

        with pytest.raises(MovementUnknownError, match="network"):
            await ledger.transfer(
                reference="order-6:debit",
                from_account=uuid.uuid4(),
                to_account=uuid.uuid4(),
                amount=Decimal("1.00"),
            )
