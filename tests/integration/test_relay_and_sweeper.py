"""The relay publishes every stored event in version order per order; the sweeper expires
lapsed quotes within seconds."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest

from domain.order import Side
from services.command_client import CommandClient
from services.engine.event_store import open_orders
from services.settings import Settings
from tests.support import (
    Customer,
    Orderer,
    eventually,
    read_topic,
    running,
    stored_order_events,
)

pytestmark = pytest.mark.integration


async def test_relay_publishes_every_event_in_version_order(
    client: CommandClient,
    customer: Customer,
    otc_settings: Settings,
) -> None:
    orders = [Orderer(customer.id) for _ in range(10)]
    with running("services.relay", otc_settings, "relay: publishing"):
        for order in orders:
            for command in (
                order.quote(Side.BUY, customer.account, customer.wallet, "100.00"),
                order.confirm(Side.BUY),
                order.debited(),
            ):
                assert (await client.send(command, timeout=30)).ok

        async def all_published() -> list[dict[str, object]]:
            records = await read_topic(otc_settings, otc_settings.events_topic)
            return [json.loads(r.value) for r in records] if len(records) >= 30 else []

        published = await eventually(all_published, timeout=30)

    by_order: dict[str, list[int]] = defaultdict(list)
    for envelope in published:
        by_order[str(envelope["orderId"])].append(int(str(envelope["version"])))
    assert sorted(by_order) == sorted(str(o.order_id) for o in orders)
    assert all(versions == [1, 2, 3] for versions in by_order.values())
    assert len({e["eventId"] for e in published}) == 30
    first = published[0]
    assert first["type"] == "order.quoted"
    assert first["customerId"] == str(customer.id)
    assert isinstance(first["data"], dict)
    assert first["data"]["sourceAmount"] == "100.00"


async def test_sweeper_expires_a_lapsed_quote_within_seconds(
    customer: Customer, otc_settings: Settings
) -> None:
    settings = otc_settings.model_copy(update={"quote_ttl_seconds": 1})
    order = Orderer(customer.id)
    with (
        running("services.engine", settings, "engine: consuming"),
        running("services.sweeper", settings),
    ):
        async with CommandClient(settings) as client:
            quoted = await client.send(
                order.quote(Side.BUY, customer.account, customer.wallet, "40.00"), timeout=30
            )
            assert quoted.ok

            def expired_events() -> list[str]:
                return [e[2] for e in stored_order_events(settings) if e[2] == "Expired"]

            await eventually(expired_events, timeout=15)

    app = open_orders(settings)
    try:
        found = await asyncio.to_thread(app.order, order.order_id)
    finally:
        app.close()
    assert found is not None
    assert found.status == "expired"
