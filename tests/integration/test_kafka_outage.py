"""A Kafka broker restart under the money-moving system (a throwaway broker of this module's
own): the engine, the relay and both workers ride it out without exiting, every order settles,
no movement happens twice, and a command client keeps getting its replies."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from domain.commands import Command
from domain.order import Side, Status
from services.cli.check import reconcile_report
from services.command_client import CommandClient
from services.settings import Settings
from tests.conftest import unique_name
from tests.infra import ThrowawayKafka
from tests.integration.money import MoneySystem, money_system
from tests.integration.test_money_faults import send_all
from tests.support import Orderer, Process

pytestmark = pytest.mark.integration

ORDERS = 40
DOWN_SECONDS = 8.0


@pytest.fixture(scope="module")
def broker() -> Iterator[ThrowawayKafka]:
    root = Path(tempfile.mkdtemp(prefix="otc-kafka-outage-"))
    kafka = ThrowawayKafka(root / "broker").create()
    try:
        yield kafka
    finally:
        kafka.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def system(settings: Settings, broker: ThrowawayKafka) -> AsyncIterator[MoneySystem]:
    topics = {
        "commands_topic": unique_name("commands"),
        "replies_topic": unique_name("replies"),
        "events_topic": unique_name("events"),
    }
    await broker.create_topics(3, *topics.values())
    dlq = unique_name("dlq")
    await broker.create_topics(1, dlq)
    on_broker = settings.model_copy(
        update={
            **topics,
            "dlq_topic": dlq,
            "kafka_bootstrap": broker.bootstrap,
            "engine_group": unique_name("engine"),
            "retry_max_seconds": 1.0,
        }
    )
    async with money_system(on_broker) as running:
        yield running


def outage_lines(process: Process) -> tuple[int, int]:
    text = process.log_path.read_text(errors="replace")
    return text.count("Kafka outage started"), text.count("Kafka outage ended")


async def restart(broker: ThrowawayKafka) -> None:
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(broker.start)


async def test_the_money_system_rides_out_a_broker_restart_and_moves_money_once(
    system: MoneySystem, broker: ThrowawayKafka
) -> None:
    customers = [await system.customer(eur="100000.00", usdc="100000.000000") for _ in range(4)]
    orders = []
    for i in range(ORDERS):
        customer = customers[i % len(customers)]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        orders.append((Orderer(customer.id), customer, side))

    async with CommandClient(system.settings) as client:
        await send_all(
            client,
            [
                o.quote(side, c.account, c.wallet, "100.00")
                if side is Side.BUY
                else o.quote(side, c.wallet, c.account, "100.000000")
                for o, c, side in orders
            ],
        )
        await send_all(client, [o.confirm(side) for o, _, side in orders])
        await system.all_in([o.order_id for o, _, _ in orders], {Status.PENDING_APPROVAL}, 120)
        outage = asyncio.create_task(restart(broker))
        await asyncio.sleep(0.5)
        for order, _, _ in orders:  # approvals published into the outage are taken afterwards
            await publish_when_possible(client, order.approve())
        await outage
        settled = await system.settled([o.order_id for o, _, _ in orders], timeout=180)
        after = Orderer(customers[0].id)
        quoted = await client.send(
            after.quote(Side.BUY, customers[0].account, customers[0].wallet, "10.00"), timeout=60
        )

    assert {order.status for order in settled.values()} == {Status.COMPLETED}
    assert quoted.ok, "the client reads replies again after the restart"
    report = await reconcile_report(system.settings)
    assert report["reconciled"], report["mismatches"]
    assert await system.conserved()
    for process in system.processes.values():
        assert process.proc is not None
        assert process.proc.poll() is None, f"{process.name} exited:\n{process.tail()}"
        started, ended = outage_lines(process)
        assert started >= 1, f"{process.name} did not notice the outage:\n{process.tail()}"
        assert started == ended, f"{process.name}:\n{process.tail()}"


async def publish_when_possible(client: CommandClient, command: Command) -> None:
    """Publish, retrying while the broker is away (as any well-behaved sender does)."""
    for _ in range(120):
        try:
            async with asyncio.timeout(5):
                await client.publish(command)
        except Exception:  # noqa: BLE001 - the broker is away: try again
            await asyncio.sleep(0.5)
        else:
            return
    raise AssertionError("the broker never came back")
