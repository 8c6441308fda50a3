"""Money that is never lost in ambiguity, stuck, or moved twice, against the sandboxes over HTTP
with the engine, relay and both workers as real processes: answers that say nothing (garbled,
409), refunds refused then retried, a poison event, an outcome unknown for a while; and the
reconciliation, which must fail on a stray transfer or a second payout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import psycopg
import pytest

from domain.commands import Command
from domain.failures import FailureReason
from domain.order import Leg, Order, Side, Status
from domain.views import OrderView
from services import kafka
from services.cli.check import reconcile_report
from services.cli.dlq import Which, list_dead_letters, replay_dead_letters
from services.command_client import CommandClient
from services.local.money import TREASURY_ADDRESSES, set_up_money
from services.settings import Settings
from tests.integration.money import MoneySystem, money_system
from tests.support import Customer, Orderer, eventually

pytestmark = pytest.mark.integration

ORDERS_PER_SIDE = 6


@pytest.fixture
async def system(otc_settings: Settings) -> AsyncIterator[MoneySystem]:
    quick = otc_settings.model_copy(
        update={
            "movement_retry_base_seconds": 0.2,
            "movement_retry_max_seconds": 1.0,
            "movement_flag_after_seconds": 3.0,
        }
    )
    async with money_system(quick) as running:
        yield running


@pytest.fixture
async def client(system: MoneySystem) -> AsyncIterator[CommandClient]:
    async with CommandClient(system.settings) as command_client:
        yield command_client


async def ok(client: CommandClient, *commands: Command) -> None:
    replies = await asyncio.gather(*(client.send(c, timeout=60) for c in commands))
    refused = [reply.error for reply in replies if not reply.ok]
    assert not refused, refused[:3]


async def approved_orders(
    system: MoneySystem, client: CommandClient, customers: list[Customer], *, reject: bool = False
) -> list[Orderer]:
    """Buys and sells of these customers, quoted, confirmed and decided."""
    orders = [
        (Orderer(customer.id), customer, side)
        for customer in customers
        for side in (Side.BUY, Side.SELL)
    ]
    await ok(
        client,
        *(
            o.quote(side, c.account, c.wallet, "100.00")
            if side is Side.BUY
            else o.quote(side, c.wallet, c.account, "100.000000")
            for o, c, side in orders
        ),
    )
    await ok(client, *(o.confirm(side) for o, _, side in orders))
    await system.all_in([o.order_id for o, _, _ in orders], {Status.PENDING_APPROVAL}, 120)
    await ok(client, *(o.reject() if reject else o.approve() for o, _, _ in orders))
    return [o for o, _, _ in orders]


async def reconciled(system: MoneySystem) -> dict[str, object]:
    report = await reconcile_report(system.settings)
    assert report["reconciled"], report["mismatches"]
    return report


@pytest.mark.parametrize("fault", ["garbledRate", "conflictRate"])
async def test_answers_that_say_nothing_settle_every_order_once_and_reconcile(
    system: MoneySystem, client: CommandClient, fault: str
) -> None:
    customers = [
        await system.customer(eur="1000.00", usdc="1000.000000") for _ in range(ORDERS_PER_SIDE)
    ]
    for sandbox in (system.bank, system.chain):
        assert (await sandbox.post("/admin/faults", json={fault: 1.0})).status_code == 200

    orders = await approved_orders(system, client, customers)
    settled = await system.settled([o.order_id for o in orders], timeout=180)

    for sandbox in (system.bank, system.chain):
        await sandbox.delete("/admin/faults")
    assert {order.status for order in settled.values()} == {Status.COMPLETED}
    report = await reconciled(system)
    assert report["movementsBooked"] == 4 * ORDERS_PER_SIDE
    assert await system.conserved()


async def test_reconcile_fails_on_a_stray_transfer_and_on_a_second_payout(
    system: MoneySystem, client: CommandClient
) -> None:
    customer = await system.customer(eur="1000.00", usdc="1000.000000")
    [buy, _] = await approved_orders(system, client, [customer])
    done = await system.settled_into(buy.order_id, Status.COMPLETED)
    await reconciled(system)
    treasury = TREASURY_ADDRESSES[customer.network]  # type: ignore[index]

    paid_again = await system.chain.post(
        "/transfers",
        json={
            "reference": f"{buy.order_id}-payout-2",
            "network": customer.network,
            "fromAddress": treasury,
            "toAddress": customer.address,
            "amount": str(done.destination_amount),
        },
    )
    assert paid_again.status_code == 201
    report = await reconcile_report(system.settings)
    assert not report["reconciled"]
    problems = {m["reference"]: m["problem"] for m in report["mismatches"]}
    assert str(buy.order_id) in problems
    assert "2 payouts held" in problems[str(buy.order_id)]

    stray = await system.bank.post(
        "/transfers",
        json={
            "reference": f"stray-{uuid.uuid4().hex[:8]}",
            "fromAccount": str(customer.account),
            "toAccount": str((await system.treasury_account()).id),
            "amount": "1.00",
        },
    )
    assert stray.status_code == 201
    problems = {
        m["reference"]: m["problem"]
        for m in (await reconcile_report(system.settings))["mismatches"]
    }
    assert any("for no order" in problem for problem in problems.values())


async def test_a_refused_refund_ends_refund_failed_and_retry_refund_completes_it(
    system: MoneySystem, client: CommandClient
) -> None:
    customer = await system.customer(eur="1000.00")
    buy = Orderer(customer.id)
    await ok(client, buy.quote(Side.BUY, customer.account, customer.wallet, "250.00"))
    await ok(client, buy.confirm(Side.BUY))
    await system.settled_into(buy.order_id, Status.PENDING_APPROVAL)
    assert (await system.bank.post(f"/admin/accounts/{customer.account}/close")).is_success

    await ok(client, buy.reject())
    failed = await system.settled_into(buy.order_id, Status.REFUND_FAILED)
    assert failed.failure_reason is not None
    assert failed.failure_reason.startswith("ACCOUNT_CLOSED")
    assert OrderView.of(failed).failure_reason is FailureReason.ACCOUNT_UNAVAILABLE
    await reconciled(system)
    assert (await system.bank.post(f"/admin/accounts/{customer.account}/reopen")).is_success
    await ok(client, buy.retry_refund())

    refunded = await system.settled_into(buy.order_id, Status.REJECTED)

    assert refunded.refund_attempt == 2
    assert await system.eur_balance(customer.account) == Decimal("1000.00")
    await reconciled(system)


async def test_a_poison_event_is_dead_lettered_other_orders_go_on_and_it_can_be_replayed(
    system: MoneySystem, client: CommandClient
) -> None:
    settings = system.settings
    polygon = await system.customer(eur="1000.00", network="polygon")
    ethereum = await system.customer(eur="1000.00", network="ethereum")
    stuck, moving = Orderer(polygon.id), Orderer(ethereum.id)
    await ok(
        client,
        stuck.quote(Side.BUY, polygon.account, polygon.wallet, "100.00"),
        moving.quote(Side.BUY, ethereum.account, ethereum.wallet, "100.00"),
    )
    await ok(client, stuck.confirm(Side.BUY), moving.confirm(Side.BUY))
    await system.all_in([stuck.order_id, moving.order_id], {Status.PENDING_APPROVAL}, 60)
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute("DELETE FROM resources.wallets WHERE is_treasury AND network = 'polygon'")
    producer = kafka.producer(settings, client_id="otc-tests")
    await producer.start()
    try:
        await producer.send_and_wait(settings.events_topic, b"{not an event", key=b"garbage")
    finally:
        await producer.stop()

    await ok(client, stuck.approve(), moving.approve())

    await system.settled_into(moving.order_id, Status.COMPLETED)
    letters = await eventually(
        lambda: dead_letters_of(settings, "usdc-chain", "no treasury wallet"), timeout=60
    )
    assert letters[0]["key"] == str(stuck.order_id)
    garbage = await list_dead_letters(settings, Which.EVENTS)
    assert {(d.key, d.headers["worker"]) for d in garbage if d.key == b"garbage"} == {
        (b"garbage", "eur-treasury"),
        (b"garbage", "usdc-chain"),
    }
    assert (await system.orders([stuck.order_id]))[stuck.order_id].status is Status.PAYOUT_PENDING
    assert settings.provider_token is not None
    await set_up_money(settings, settings.provider_token.get_secret_value())

    replayed = await replay_dead_letters(settings, Which.EVENTS)

    assert len(replayed) == len(garbage)
    assert all(d.replayed for d in await list_dead_letters(settings, Which.EVENTS) if d in garbage)
    await system.settled_into(stuck.order_id, Status.COMPLETED)
    await reconciled(system)


async def dead_letters_of(settings: Settings, worker: str, error: str) -> list[dict[str, object]]:
    return [
        d.view()
        for d in await list_dead_letters(settings, Which.EVENTS)
        if d.headers.get("worker") == worker and error in d.headers.get("error", "")
    ]


async def test_an_unknown_debit_is_flagged_past_its_bound_then_settles_when_the_bank_answers(
    system: MoneySystem, client: CommandClient
) -> None:
    customer = await system.customer(eur="1000.00")
    buy = Orderer(customer.id)
    await ok(client, buy.quote(Side.BUY, customer.account, customer.wallet, "100.00"))
    assert (await system.bank.post("/admin/faults", json={"down": True})).is_success

    await ok(client, buy.confirm(Side.BUY))

    flagged = await eventually(
        lambda: flagged_order(system, buy.order_id), timeout=60, interval=0.3
    )
    assert flagged.status is Status.DEBIT_PENDING
    assert flagged.unresolved == (Leg.DEBIT, 1)
    assert flagged.failure_reason is None
    assert (await system.bank.delete("/admin/faults")).is_success
    settled = await system.settled_into(buy.order_id, Status.PENDING_APPROVAL)
    assert settled.unresolved is None
    assert await system.eur_balance(customer.account) == Decimal("900.00")
    await reconciled(system)


async def flagged_order(system: MoneySystem, order_id: uuid.UUID) -> Order | None:
    order = (await system.orders([order_id])).get(order_id)
    return order if order is not None and order.unresolved is not None else None
