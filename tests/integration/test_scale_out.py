"""Scale-out (DESIGN.md section 9): two engines and two of each worker share their consumer
groups' partitions; one of each is SIGKILLed mid-run, its partitions move over to the one left,
and every order still settles with each movement made exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from domain.order import Side, Status
from services import kafka
from services.cli.check import reconcile_report
from services.command_client import CommandClient
from services.settings import Settings
from tests.conftest import TopicFactory, unique_name
from tests.integration.money import MoneySystem, money_system
from tests.integration.test_money_faults import send_all
from tests.support import Customer, Orderer, eventually, stored_order_events

pytestmark = pytest.mark.integration

ORDERS = 80
PARTITIONS = 4
KINDS = ("engine", "eur-treasury", "usdc-chain")


@pytest.fixture
async def system(settings: Settings, new_topic: TopicFactory) -> AsyncIterator[MoneySystem]:
    scaled = settings.model_copy(
        update={
            "commands_topic": await new_topic("commands", partitions=PARTITIONS),
            "replies_topic": await new_topic("replies", partitions=PARTITIONS),
            "events_topic": await new_topic("events", partitions=PARTITIONS),
            "dlq_topic": await new_topic("dlq"),
            "engine_group": unique_name("engine"),
            "upstreams": "sandbox",
        }
    )
    async with money_system(scaled, start=("relay",)) as running:
        for kind in KINDS:
            for instance in (1, 2):
                running.start(kind, instance)
        for name, process in running.processes.items():
            if name != "relay":
                process.wait_for_log("consuming", timeout=60)
        yield running


@dataclass(frozen=True)
class Group:
    name: str
    topic: str


def groups_of(settings: Settings) -> dict[str, Group]:
    return {
        "engine": Group(settings.engine_group, settings.commands_topic),
        "eur-treasury": Group(settings.eur_worker_group, settings.events_topic),
        "usdc-chain": Group(settings.chain_worker_group, settings.events_topic),
    }


async def assignment(admin: AIOKafkaAdminClient, group: Group) -> list[set[int]]:
    """The partitions of `group.topic` each member of the group holds, once the group is
    stable (nothing while it rebalances)."""
    (response,) = await admin.describe_consumer_groups([group.name])
    described = response.to_object()["groups"][0]
    if described["state"] != "Stable":
        return []
    members = []
    for member in described["members"]:
        decoded = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
        members.append({tp.partition for tp in decoded.partitions() if tp.topic == group.topic})
    return members


async def until_assigned(
    admin: AIOKafkaAdminClient,
    group: Group,
    members: int,
    timeout: float = 90.0,  # noqa: ASYNC109
) -> list[set[int]]:
    """Poll until `members` members hold every partition between them; return who holds what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await assignment(admin, group)
        if len(found) == members and set().union(*found) == set(range(PARTITIONS)):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{group.name}: never {members} members holding every partition")


async def completed(system: MoneySystem, ids: list[UUID], *, at_least: int) -> bool:
    orders = await system.orders(ids)
    return sum(o.status is Status.COMPLETED for o in orders.values()) >= at_least


def orders_for(customers: list[Customer]) -> list[tuple[Orderer, Customer, Side]]:
    return [
        (Orderer(customers[i % len(customers)].id), customers[i % len(customers)], side)
        for i, side in enumerate([Side.BUY, Side.SELL] * (ORDERS // 2))
    ]


async def test_partitions_move_over_when_an_instance_dies_and_nothing_is_lost_or_done_twice(
    system: MoneySystem,
) -> None:
    settings = system.settings
    groups = groups_of(settings)
    customers = [await system.customer(eur="100000.00", usdc="100000.000000") for _ in range(8)]
    orders = orders_for(customers)
    admin = kafka.admin(settings, client_id="otc-tests")
    await admin.start()
    try:
        before = {kind: await until_assigned(admin, g, 2) for kind, g in groups.items()}
        async with CommandClient(settings) as client:
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
            ids = [o.order_id for o, _, _ in orders]
            await system.all_in(ids, {Status.PENDING_APPROVAL}, 120)
            for order, _, _ in orders:
                await client.publish(order.approve())
            await eventually(lambda: completed(system, ids, at_least=ORDERS // 8), timeout=120)
            killed_at = time.monotonic()  # money is moving: kill one instance of each kind
            for kind in KINDS:
                system.processes[f"{kind}-1"].kill()
            done_at_kill = sum(
                o.status is Status.COMPLETED for o in (await system.orders(ids)).values()
            )
            takeover = {}
            for kind, group in groups.items():
                after = await until_assigned(admin, group, 1)
                takeover[kind] = (time.monotonic() - killed_at, after)
            settled = await system.settled(ids, timeout=240)
    finally:
        await admin.close()

    assert done_at_kill < ORDERS, "the kills came after the work: they prove nothing"
    assert all(len(members) == 2 and all(members) for members in before.values()), before
    assert all(after == [set(range(PARTITIONS))] for _, after in takeover.values()), takeover
    assert {order.status for order in settled.values()} == {Status.COMPLETED}
    report = await reconcile_report(system.settings)
    assert report["reconciled"], report["mismatches"]
    assert report["movementsBooked"] == 2 * ORDERS, "each order moves money twice: debit, payout"
    assert await system.conserved()
    events = Counter((order_id, name) for order_id, _, name in stored_order_events(settings))
    assert all(count == 1 for count in events.values()), "an event was recorded twice"
    assert {events[(order_id, "PaidOut")] for order_id in ids} == {1}
    assert {events[(order_id, "SourceDebited")] for order_id in ids} == {1}
    for kind in KINDS:
        survivor = system.processes[f"{kind}-2"]
        assert survivor.proc is not None
        assert survivor.proc.poll() is None
    print(  # noqa: T201 - the figures this test measures, for the record
        f"\nscale-out: {ORDERS} orders ({done_at_kill} completed when one of each kind was"
        f" killed), {report['movementsBooked']} transfers (each once), "
        f"{PARTITIONS} partitions per topic; before the kills: "
        + ", ".join(f"{kind} {sorted(map(sorted, members))}" for kind, members in before.items())
        + "; after SIGKILL of one of each, the survivor held every partition after: "
        + ", ".join(f"{kind} {seconds:.1f}s" for kind, (seconds, _) in takeover.items())
    )
