"""SIGKILL in the middle of a stream: nothing lost, nothing applied twice, nothing unpublished."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from domain.commands import Command
from domain.order import Side
from services.command_client import CommandClient
from services.settings import Settings
from tests.support import (
    Customer,
    Orderer,
    Process,
    eventually,
    make_customer,
    read_topic,
    stored_order_events,
)

pytestmark = pytest.mark.integration

ORDERS = 200
LIFECYCLE = ["Quoted", "Confirmed", "SourceDebited", "Approved", "PaidOut"]


def lifecycle(order: Orderer, customer: Customer) -> list[Command]:
    return [
        order.quote(Side.BUY, customer.account, customer.wallet, "100.00"),
        order.confirm(Side.BUY),
        order.debited(),
        order.approve("1.0750"),
        order.paid_out(),
    ]


@pytest.fixture
async def crash_settings(otc_settings: Settings) -> Settings:
    return otc_settings.model_copy(update={"quote_ttl_seconds": 600, "engine_batch_size": 50})


async def publish_stream(settings: Settings, customer: Customer) -> list[Orderer]:
    orders = [Orderer(customer.id) for _ in range(ORDERS)]
    async with CommandClient(settings) as client:
        for order in orders:
            for command in lifecycle(order, customer):
                await client.publish(command)
    return orders


async def test_engine_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    crash_settings: Settings,
) -> None:
    customer = await make_customer(crash_settings)
    orders = await publish_stream(crash_settings, customer)
    engine = Process("services.engine", crash_settings).start()
    try:
        await eventually(
            lambda: len(stored_order_events(crash_settings)) >= 200, timeout=60, interval=0.05
        )
        engine.kill()
        killed_at = len(stored_order_events(crash_settings))
        engine = Process("services.engine", crash_settings).start()
        await eventually(
            lambda: len(stored_order_events(crash_settings)) >= ORDERS * 5, timeout=120
        )
        engine.wait_for_log("engine: consuming")
    finally:
        engine.stop()

    events = stored_order_events(crash_settings)
    assert killed_at < ORDERS * 5
    assert len(events) == ORDERS * 5
    by_order: dict[object, list[str]] = defaultdict(list)
    for order_id, _, name in events:
        by_order[order_id].append(name)
    assert set(by_order) == {o.order_id for o in orders}
    assert all(names == LIFECYCLE for names in by_order.values())


async def test_relay_killed_mid_stream_publishes_every_event(crash_settings: Settings) -> None:
    customer = await make_customer(crash_settings)
    await publish_stream(crash_settings, customer)
    engine = Process("services.engine", crash_settings).start()
    relay = Process("services.relay", crash_settings).start()
    try:
        await eventually(
            lambda: len(stored_order_events(crash_settings)) >= ORDERS * 5,
            timeout=120,
        )

        async def some_published() -> bool:
            return len(await read_topic(crash_settings, crash_settings.events_topic)) >= 100

        await eventually(some_published, timeout=60, interval=0.05)
        relay.kill()
        relay = Process("services.relay", crash_settings).start()

        async def all_published() -> list[dict[str, object]]:
            records = await read_topic(crash_settings, crash_settings.events_topic)
            envelopes = [json.loads(r.value) for r in records]
            return envelopes if len({e["eventId"] for e in envelopes}) >= ORDERS * 5 else []

        published = await eventually(all_published, timeout=120)
    finally:
        relay.stop()
        engine.stop()

    stored = {
        (str(order_id), version) for order_id, version, _ in stored_order_events(crash_settings)
    }
    seen = {(str(e["orderId"]), int(str(e["version"]))) for e in published}
    assert seen == stored
    first_seen: dict[str, list[int]] = defaultdict(list)
    for envelope in published:
        versions = first_seen[str(envelope["orderId"])]
        version = int(str(envelope["version"]))
        if version not in versions:
            versions.append(version)
    assert all(versions == [1, 2, 3, 4, 5] for versions in first_seen.values())
    duplicates = sum(count - 1 for count in Counter(e["eventId"] for e in published).values())
    print(f"relay crash: {len(published)} records, {duplicates} republished after the restart")  # noqa: T201
