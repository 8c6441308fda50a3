"""The dispatcher on the in-memory store: order events -> deliveries, exactly once per
endpoint and event, with the public order view after the event; poison to the dead letters."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID, uuid4

from domain.order import Actor, ActorKind, Cause, Order, Side
from domain.views import OrderView
from services.contracts import EventEnvelope, event_id, event_type
from services.dead_letters import KafkaRecord
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.fake import InMemoryWebhookStore
from services.webhooks.model import NewEndpoint
from services.webhooks.views import Wanted
from tests.unit.strategies import T0, new_order

NOW = T0 + timedelta(seconds=5)


class Desk:
    """Orders and their views at each version, an in-memory store, the dead letters."""

    def __init__(self) -> None:
        self.store = InMemoryWebhookStore()
        self.views: dict[tuple[UUID, int], OrderView] = {}
        self.dead: list[tuple[KafkaRecord, str]] = []
        self.lookups = 0

        async def load_views(wanted: Wanted) -> dict[tuple[UUID, int], OrderView]:
            self.lookups += 1
            return {
                (o, v): self.views[o, v]
                for o, vs in wanted.items()
                for v in vs
                if (o, v) in self.views
            }

        async def dead_letter(record: KafkaRecord, error: str) -> None:
            self.dead.append((record, error))

        async def no_sleep(_: float) -> None:
            return None

        self.dispatcher = Dispatcher(
            self.store,
            load_views=load_views,
            dead_letter=dead_letter,
            clock=lambda: NOW,
            sleep=no_sleep,
        )

    async def endpoint(self, customer: UUID, *types: str) -> UUID:
        new = NewEndpoint(uuid4(), customer, "https://hooks.example.com", "", types, b"s")
        made, _ = await self.store.add_endpoint(new, T0, limit=20)
        return made.id

    def order(self, customer: UUID) -> tuple[Order, list[KafkaRecord]]:
        """A buy, quoted and confirmed: its two events as records, each version's view known."""
        order = new_order(Side.BUY, "100.00", "1.08", "0", order_id=uuid4(), customer_id=customer)
        self.views[order.id, 1] = OrderView.of(order)
        order.confirm(Side.BUY, None, Cause(Actor(ActorKind.CUSTOMER, str(customer)), uuid4(), NOW))
        self.views[order.id, 2] = OrderView.of(order)
        records = [record(order, Order.Quoted, 1), record(order, Order.Confirmed, 2)]
        return order, records


def record(order: Order, event: type[Order.Event], version: int) -> KafkaRecord:
    envelope = EventEnvelope(
        event_id=event_id(order.id, version),
        type=event_type(event.__name__),
        order_id=order.id,
        customer_id=order.customer_id,
        side=order.side.value,
        version=version,
        position=version,
        occurred_at=T0 + timedelta(seconds=version),
        data={"serverSide": "reference-that-must-not-leak"},
    )
    return KafkaRecord(envelope.to_bytes(), str(order.id).encode(), "events", 0, version)


async def test_each_event_is_one_delivery_per_endpoint_of_its_customer() -> None:
    desk = Desk()
    alice, bob = uuid4(), uuid4()
    first, second = await desk.endpoint(alice), await desk.endpoint(alice)
    bobs = await desk.endpoint(bob)
    _, records = desk.order(alice)

    added = await desk.dispatcher.handle_records(records)

    assert added == 4
    for endpoint in (first, second):
        assert (await desk.store.deliveries(endpoint, page=1, limit=10))[1] == 2
    assert (await desk.store.deliveries(bobs, page=1, limit=10))[1] == 0


async def test_the_body_is_the_public_order_view_after_the_event() -> None:
    desk = Desk()
    customer = uuid4()
    await desk.endpoint(customer)
    order, records = desk.order(customer)

    await desk.dispatcher.handle_records(records)

    body = json.loads(desk.store.events[event_id(order.id, 2)].body)
    assert body["type"] == "order.confirmed"
    assert body["timestamp"].startswith((T0 + timedelta(seconds=2)).isoformat()[:19])
    assert body["data"] == json.loads(json.dumps(desk.views[order.id, 2].public_json()))
    assert body["data"]["status"] == "debit_pending"
    assert (
        "reference-that-must-not-leak" not in desk.store.events[event_id(order.id, 2)].body.decode()
    )


async def test_a_redelivered_batch_records_nothing_twice() -> None:
    desk = Desk()
    customer = uuid4()
    endpoint = await desk.endpoint(customer)
    _, records = desk.order(customer)

    await desk.dispatcher.handle_records(records)
    again = await desk.dispatcher.handle_records(records)

    assert again == 0
    assert (await desk.store.deliveries(endpoint, page=1, limit=10))[1] == 2


async def test_an_endpoint_gets_only_the_types_it_chose() -> None:
    desk = Desk()
    customer = uuid4()
    endpoint = await desk.endpoint(customer, "order.confirmed")
    _, records = desk.order(customer)

    await desk.dispatcher.handle_records(records)

    [delivery], _ = await desk.store.deliveries(endpoint, page=1, limit=10)
    assert delivery.event_type == "order.confirmed"


async def test_operators_facts_are_not_sent_to_customers() -> None:
    desk = Desk()
    customer = uuid4()
    endpoint = await desk.endpoint(customer)
    order, _ = desk.order(customer)
    desk.views[order.id, 3] = desk.views[order.id, 4] = desk.views[order.id, 2]

    await desk.dispatcher.handle_records(
        [record(order, Order.ApprovalRecorded, 3), record(order, Order.MovementUnresolved, 4)]
    )

    assert (await desk.store.deliveries(endpoint, page=1, limit=10))[1] == 0
    assert desk.dead == []
    assert desk.lookups == 0


async def test_an_unparseable_record_is_dead_lettered_and_the_rest_recorded() -> None:
    desk = Desk()
    customer = uuid4()
    endpoint = await desk.endpoint(customer)
    _, records = desk.order(customer)
    garbage = KafkaRecord(b"not json", None, "events", 0, 99)

    await desk.dispatcher.handle_records([garbage, *records])

    assert [(r.offset, "unparseable" in why) for r, why in desk.dead] == [(99, True)]
    assert (await desk.store.deliveries(endpoint, page=1, limit=10))[1] == 2


async def test_an_event_whose_order_is_not_in_the_event_store_is_dead_lettered_after_tries() -> (
    None
):
    desk = Desk()
    customer = uuid4()
    endpoint = await desk.endpoint(customer)
    order, records = desk.order(customer)
    del desk.views[order.id, 2]

    await desk.dispatcher.handle_records(records)

    assert [r.offset for r, _ in desk.dead] == [2]
    assert "3 tries" in desk.dead[0][1]
    assert desk.lookups == 3
    assert (await desk.store.deliveries(endpoint, page=1, limit=10))[1] == 1
