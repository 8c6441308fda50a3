"""Faults: with every sandbox failing 30% of calls (and losing some responses after booking, or
answering them garbled or as a conflict), and each worker SIGKILLed mid-run, 200 mixed orders all
settle, the ledgers reconcile with every order's history (nothing moved twice, nothing missing,
nothing stray), and money is conserved."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest

from domain.commands import Command
from domain.order import Side, Status
from services.cli.check import reconcile_report
from services.command_client import CommandClient
from services.settings import Settings
from tests.integration.money import MoneySystem, money_system
from tests.support import Customer, Orderer

pytestmark = pytest.mark.integration

ORDERS = 200
CUSTOMERS = 10
FAULTS = {"failRate": 0.3, "failAfterCommitRate": 0.05, "seed": 7}
# The ledgers also answer some bookings garbled or as a conflict: outcomes a worker must learn
# by reading the transfer back, never take for a refusal.
LEDGER_FAULTS = {**FAULTS, "garbledRate": 0.05, "conflictRate": 0.05}


@pytest.fixture
async def system(otc_settings: Settings) -> AsyncIterator[MoneySystem]:
    async with money_system(otc_settings) as running:
        yield running


async def send_all(client: CommandClient, commands: Sequence[Command]) -> None:
    replies = await asyncio.gather(*(client.send(command, timeout=120) for command in commands))
    refused = [reply.error for reply in replies if not reply.ok]
    assert not refused, refused[:3]


async def test_two_hundred_orders_settle_through_faults_and_worker_crashes(
    system: MoneySystem,
) -> None:
    rng = random.Random(11)
    customers: list[Customer] = [
        await system.customer(eur="100000.00", usdc="100000.000000") for _ in range(CUSTOMERS)
    ]
    orders: list[tuple[Orderer, Customer, Side, bool]] = []
    for i in range(ORDERS):
        customer = customers[i % CUSTOMERS]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        orders.append((Orderer(customer.id), customer, side, rng.random() < 0.1))

    async with CommandClient(system.settings) as client:
        await send_all(
            client,
            [
                o.quote(side, c.account, c.wallet, "100.00")
                if side is Side.BUY
                else o.quote(side, c.wallet, c.account, "100.000000")
                for o, c, side, _ in orders
            ],
        )
        # The faults start once every order is quoted: a quote's balance read or price that
        # fails all its tries is refused QUOTE_UNAVAILABLE, rightly, and that is not what this
        # test is about; every movement, and the live price of every approval, is faulted.
        for sandbox, faults in (
            (system.bank, LEDGER_FAULTS),
            (system.chain, LEDGER_FAULTS),
            (system.provider, FAULTS),
        ):
            assert (await sandbox.post("/admin/faults", json=faults)).status_code == 200
        await send_all(client, [o.confirm(side) for o, _, side, _ in orders])
        await asyncio.gather(
            *(
                system.settled_into(o.order_id, Status.PENDING_APPROVAL, timeout=120)
                for o, _, _, _ in orders
            ),
        )
        decisions = [o.reject() if reject else o.approve() for o, _, _, reject in orders]
        first_half, second_half = decisions[: ORDERS // 2], decisions[ORDERS // 2 :]
        await send_all(client, first_half)
        system.processes["eur-treasury"].kill()
        system.start("eur-treasury")
        await send_all(client, second_half)
        await asyncio.sleep(1.0)
        system.processes["usdc-chain"].kill()
        system.start("usdc-chain")

        settled = await system.settled([o.order_id for o, _, _, _ in orders], timeout=240)

    for sandbox in (system.bank, system.chain, system.provider):
        await sandbox.delete("/admin/faults")
    expected = {
        o.order_id: Status.REJECTED if reject else Status.COMPLETED for o, _, _, reject in orders
    }
    assert {i: order.status for i, order in settled.items()} == expected
    report = await reconcile_report(system.settings)
    assert report["reconciled"], report["mismatches"]
    assert report["inFlight"] == 0
    assert await system.conserved()
    for customer in customers:
        mine = [settled[o.order_id] for o, c, _, _ in orders if c is customer]
        eur = Decimal("100000.00")
        usdc = Decimal("100000.000000")
        for order in mine:
            if order.status is not Status.COMPLETED:
                continue
            if order.side is Side.BUY:
                eur -= order.source_amount
                usdc += order.destination_amount
            else:
                usdc -= order.source_amount
                eur += order.destination_amount
        assert await system.eur_balance(customer.account) == eur
        assert await system.usdc_balance(customer.network, customer.address) == usdc
