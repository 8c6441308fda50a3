"""Money moves: buy and sell orders settle with the right balances everywhere, against the
sandboxes over HTTP, with the engine, relay and both workers as real processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from domain.order import Side, Status
from services.command_client import CommandClient
from services.settings import Settings
from tests.integration.money import MoneySystem, money_system
from tests.support import Orderer

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(otc_settings: Settings) -> AsyncIterator[MoneySystem]:
    async with money_system(otc_settings) as running:
        yield running


@pytest.fixture
async def client(system: MoneySystem) -> AsyncIterator[CommandClient]:
    async with CommandClient(system.settings) as command_client:
        yield command_client


async def test_buy_completes_with_the_right_balances_everywhere(
    system: MoneySystem, client: CommandClient
) -> None:
    customer = await system.customer(eur="5000.00")
    treasury_eur = await system.treasury_eur()
    treasury_usdc = await system.treasury_usdc(customer.network)
    order = Orderer(customer.id)
    assert (
        await client.send(
            order.quote(Side.BUY, customer.account, customer.wallet, "1000.00"), timeout=30
        )
    ).ok
    assert (await client.send(order.confirm(Side.BUY), timeout=30)).ok
    await system.settled_into(order.order_id, Status.PENDING_APPROVAL)
    assert (await client.send(order.approve(), timeout=30)).ok

    done = (await system.settled([order.order_id]))[order.order_id]

    assert done.status is Status.COMPLETED
    assert done.indicative_rate is not None
    assert (
        done.rate != done.indicative_rate
    )  # the provider's price moved between quote and approval
    assert await system.eur_balance(customer.account) == Decimal("4000.00")
    assert await system.treasury_eur() == treasury_eur + Decimal("1000.00")
    assert await system.usdc_balance(customer.network, customer.address) == done.destination_amount
    assert await system.treasury_usdc(customer.network) == treasury_usdc - done.destination_amount
    assert await system.conserved()


async def test_sell_completes_with_the_right_balances_everywhere(
    system: MoneySystem, client: CommandClient
) -> None:
    customer = await system.customer(usdc="800.000000")
    treasury_eur = await system.treasury_eur()
    treasury_usdc = await system.treasury_usdc(customer.network)
    order = Orderer(customer.id)
    assert (
        await client.send(
            order.quote(Side.SELL, customer.wallet, customer.account, "500.000000"), timeout=30
        )
    ).ok
    assert (await client.send(order.confirm(Side.SELL), timeout=30)).ok
    assert (await client.send(order.approve(), timeout=30)).ok

    done = (await system.settled([order.order_id]))[order.order_id]

    assert done.status is Status.COMPLETED
    assert await system.usdc_balance(customer.network, customer.address) == Decimal("300.000000")
    assert await system.treasury_usdc(customer.network) == treasury_usdc + Decimal("500.000000")
    assert await system.eur_balance(customer.account) == done.destination_amount
    assert await system.treasury_eur() == treasury_eur - done.destination_amount
    assert await system.conserved()


async def test_a_rejected_buy_is_refunded(system: MoneySystem, client: CommandClient) -> None:
    customer = await system.customer(eur="300.00")
    order = Orderer(customer.id)
    assert (
        await client.send(
            order.quote(Side.BUY, customer.account, customer.wallet, "250.00"), timeout=30
        )
    ).ok
    assert (await client.send(order.confirm(Side.BUY), timeout=30)).ok
    await system.settled_into(order.order_id, Status.PENDING_APPROVAL)
    assert await system.eur_balance(customer.account) == Decimal("50.00")
    assert (await client.send(order.reject(), timeout=30)).ok

    done = (await system.settled([order.order_id]))[order.order_id]

    assert done.status is Status.REJECTED
    assert done.refund_reference is not None
    assert await system.eur_balance(customer.account) == Decimal("300.00")
    assert await system.conserved()


async def test_a_sell_whose_wallet_is_drained_before_approval_fails_with_nothing_moved(
    system: MoneySystem,
    client: CommandClient,
) -> None:
    customer = await system.customer(usdc="100.000000")
    order = Orderer(customer.id)
    assert (
        await client.send(
            order.quote(Side.SELL, customer.wallet, customer.account, "100.000000"), timeout=30
        )
    ).ok
    assert (await client.send(order.confirm(Side.SELL), timeout=30)).ok
    drained = await system.chain.post(
        "/transfers",
        json={
            "reference": f"drain-{order.order_id}",
            "network": customer.network,
            "fromAddress": customer.address,
            "toAddress": "0x" + "99" * 20,
            "amount": "60.000000",
        },
    )
    assert drained.status_code == 201
    treasury_usdc = await system.treasury_usdc(customer.network)
    assert (await client.send(order.approve(), timeout=30)).ok

    done = (await system.settled([order.order_id]))[order.order_id]

    assert done.status is Status.FAILED
    assert await system.usdc_balance(customer.network, customer.address) == Decimal("40.000000")
    assert await system.treasury_usdc(customer.network) == treasury_usdc
    assert await system.eur_balance(customer.account) == Decimal("0.00")
    assert await system.conserved()


async def test_a_buy_whose_account_lacks_funds_fails(
    system: MoneySystem, client: CommandClient
) -> None:
    customer = await system.customer(eur="99.99")
    order = Orderer(customer.id)
    assert (
        await client.send(
            order.quote(Side.BUY, customer.account, customer.wallet, "100.00"), timeout=30
        )
    ).ok
    assert (await client.send(order.confirm(Side.BUY), timeout=30)).ok

    done = (await system.settled([order.order_id]))[order.order_id]

    assert done.status is Status.FAILED
    assert await system.eur_balance(customer.account) == Decimal("99.99")
    assert await system.conserved()
