"""`HttpChain` over real HTTP against the chain sandbox: transfers move USDC once per reference
through failures, live balances, permanent refusals."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from services.adapters.chain import HttpChain
from services.adapters.http import upstream_client
from services.adapters.ports import UpstreamRejectedError, UpstreamUnavailableError
from services.local.sandbox.chain import create_app
from services.settings import Settings
from tests.integration.sandboxes import FAST_RETRY, fund_wallet, over_http, set_faults, totals

pytestmark = pytest.mark.integration


def evm_address() -> str:
    return "0x" + secrets.token_hex(20)


@dataclass
class Chain:
    admin: httpx.AsyncClient
    port: HttpChain
    customer: str
    treasury: str


@pytest.fixture
async def chain(settings: Settings) -> AsyncIterator[Chain]:
    async with (
        over_http(create_app(settings)) as (url, admin),
        upstream_client(url, timeout_seconds=settings.upstream_timeout_seconds) as client,
    ):
        customer, treasury = evm_address(), evm_address()
        await fund_wallet(admin, "polygon", customer, "50.000000")
        yield Chain(admin, HttpChain(client, retry=FAST_RETRY), customer, treasury)


async def test_transfer_returns_the_transaction_hash_and_moves_usdc(chain: Chain) -> None:
    sent = await chain.port.transfer(
        reference="order-1:payout",
        network="polygon",
        from_address=chain.customer,
        to_address=chain.treasury,
        amount=Decimal("12.345678"),
    )

    assert sent.reference == "order-1:payout"
    assert sent.external_id.startswith("0x")
    assert len(sent.external_id) == 66
    balance = await chain.port.usdc_balance(network="polygon", address=chain.treasury)
    assert balance == Decimal("12.345678")


async def test_transfers_through_failures_and_lost_responses_move_usdc_exactly_once(
    chain: Chain,
) -> None:
    await set_faults(chain.admin, failRate=0.2, failAfterCommitRate=0.2, seed=4)

    sent = [
        await chain.port.transfer(
            reference=f"order-{n}:debit",
            network="polygon",
            from_address=chain.customer,
            to_address=chain.treasury,
            amount=Decimal("2.5"),
        )
        for n in range(12)
    ]
    treasury = await chain.port.usdc_balance(network="polygon", address=chain.treasury)
    customer = await chain.port.usdc_balance(network="polygon", address=chain.customer)
    await chain.admin.delete("/admin/faults")

    assert len({s.external_id for s in sent}) == 12
    assert (customer, treasury) == (Decimal(20), Decimal(30))
    assert (await totals(chain.admin))["balance"] == "50.000000"


async def test_balance_of_a_fresh_address_is_zero(chain: Chain) -> None:
    balance = await chain.port.usdc_balance(network="ethereum", address=evm_address())

    assert balance == 0


@pytest.mark.parametrize(
    ("network", "to_address", "amount", "code"),
    [
        ("polygon", None, "50.000001", "INSUFFICIENT_FUNDS"),
        ("polygon", "0xnothex", "1", "INVALID_ADDRESS"),
        ("tron", None, "1", "UNSUPPORTED_NETWORK"),
    ],
)
async def test_refusals_surface_as_permanent(
    chain: Chain, network: str, to_address: str | None, amount: str, code: str
) -> None:
    with pytest.raises(UpstreamRejectedError) as refused:
        await chain.port.transfer(
            reference="order-x:payout",
            network=network,
            from_address=chain.customer,
            to_address=to_address or chain.treasury,
            amount=Decimal(amount),
        )

    assert refused.value.code == code
    assert await chain.port.usdc_balance(network="polygon", address=chain.customer) == 50


async def test_a_balance_read_while_down_is_unavailable(chain: Chain) -> None:
    await set_faults(chain.admin, down=True)

    with pytest.raises(UpstreamUnavailableError):
        await chain.port.usdc_balance(network="polygon", address=chain.customer)
