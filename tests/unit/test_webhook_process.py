"""The dispatcher process wired by `build` on FastStream's in-memory Kafka broker: order events
in, deliveries recorded and sent; poison to the dead-letter topic, named."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from domain.order import Side
from domain.views import OrderView
from services.contracts import EventEnvelope, event_id
from services.settings import Settings
from services.webhooks.__main__ import build
from services.webhooks.fake import InMemoryWebhookStore
from services.webhooks.model import NewEndpoint
from services.webhooks.schedule import Answer
from services.webhooks.signing import SecretBox, new_box_key, new_secret
from services.webhooks.views import Wanted
from tests.unit.strategies import T0, new_order

SETTINGS = Settings(pg_password="unused", events_topic="events", events_dlq_topic="dead")


async def test_events_become_deliveries_and_poison_is_dead_lettered_by_name() -> None:
    customer = uuid.uuid4()
    order = new_order(Side.BUY, "100.00", "1.08", "0", order_id=uuid.uuid4(), customer_id=customer)
    store = InMemoryWebhookStore()
    box = SecretBox(new_box_key())
    sealed = box.seal(new_secret())
    new = NewEndpoint(uuid.uuid4(), customer, "https://hooks.example.com", "", (), sealed)
    endpoint, _ = await store.add_endpoint(new, T0, limit=20)
    broker = KafkaBroker()
    dead: list[dict[str, Any]] = []

    @broker.subscriber("dead")
    async def on_dead(_: bytes, msg: KafkaMessage) -> None:
        dead.append(dict(msg.headers))

    async def load_views(wanted: Wanted) -> dict[tuple[UUID, int], OrderView]:
        return {(order.id, 1): OrderView.of(order)} if order.id in wanted else {}

    posted: list[str] = []

    async def post(url: str, headers: dict[str, str], body: bytes) -> Answer:  # noqa: ARG001 - a Post
        posted.append(headers["webhook-id"])
        return Answer(204)

    webhooks = build(
        SETTINGS,
        broker,
        store=store,
        load_views=load_views,
        post=post,
        box=box,
    )
    envelope = EventEnvelope(
        event_id=event_id(order.id, 1),
        type="order.quoted",
        order_id=order.id,
        customer_id=customer,
        side="buy",
        version=1,
        position=1,
        occurred_at=T0,
        data={},
    )
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(envelope.to_bytes(), topic="events", key=str(order.id).encode())
        await test_broker.publish(b"not an event", topic="events")

    await webhooks.sender.drain()

    [delivery], _ = await store.deliveries(endpoint.id, page=1, limit=10)
    assert delivery.event_id == envelope.event_id
    assert posted == [delivery.webhook_id]
    [letter] = dead
    assert letter["worker"] == "webhooks"
    assert "unparseable" in letter["error"]
    assert letter["original_topic"] == "events"
