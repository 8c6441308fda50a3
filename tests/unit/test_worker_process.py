"""A treasury worker process wired by `build` on FastStream's in-memory Kafka broker and fakes:
an order event in, the money moved and its outcome out as a command; a redelivered event moves
nothing; poison to the dead-letter topic, named, and the rest of its batch goes on."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from domain import commands as c
from domain.order import Cause, Order, Side
from services.adapters.fakes import FakeLedger
from services.batches import record_values
from services.contracts import (
    CAUSED_BY,
    TRACE_ID,
    CommandEnvelope,
    EventEnvelope,
    event_id,
    event_type,
)
from services.dead_letters import DeadLetter
from services.metrics import MOVEMENTS
from services.resilience import Outages
from services.resources.fake import InMemoryResourceDirectory
from services.settings import Settings
from services.workers.__main__ import build
from services.workers.movers import EurTreasury
from services.workers.parked import InMemoryParkedMovements
from services.workers.treasury import Publish, TreasuryWorker
from tests.metric_values import value_of
from tests.unit.strategies import CUSTOMER, T0, new_order

SETTINGS = Settings(
    pg_password="unused", events_topic="events", commands_topic="commands", events_dlq_topic="dead"
)


def confirmed_buy(resources: InMemoryResourceDirectory) -> Order:
    """A buy order just confirmed: it waits for the EUR treasury to debit its account."""
    customer = UUID(CUSTOMER.id)
    order = new_order(Side.BUY, "100.00", "1.08", "0", order_id=uuid4(), customer_id=customer)
    order.source_id = resources.add_account(customer).id
    order.destination_id = resources.add_wallet(customer).id
    order.confirm(order.side, None, Cause(CUSTOMER, uuid4(), T0 + timedelta(seconds=5)))
    return order


def confirmed_event(order: Order) -> bytes:
    return EventEnvelope(
        event_id=event_id(order.id, order.version),
        type=event_type(Order.Confirmed.__name__),
        order_id=order.id,
        customer_id=order.customer_id,
        side=order.side.value,
        version=order.version,
        position=order.version,
        occurred_at=T0,
        data={},
    ).to_bytes()


async def test_an_event_moves_money_once_and_its_outcome_is_a_command() -> None:
    resources = InMemoryResourceDirectory()
    resources.add_treasury_account()
    ledger = FakeLedger()
    order = confirmed_buy(resources)
    orders = {order.id: order}
    broker = KafkaBroker()

    async def load_order(order_id: UUID) -> Order | None:
        return orders.get(order_id)

    def worker_of(publish: Publish, dead_letter: DeadLetter) -> TreasuryWorker:
        return TreasuryWorker(
            EurTreasury(ledger, resources),
            load_order=load_order,
            publish=publish,
            parked=InMemoryParkedMovements(),
            dead_letter=dead_letter,
        )

    build(SETTINGS, broker, worker_of, Outages("eur-treasury", logging.getLogger("test")))
    outcomes: list[CommandEnvelope] = []
    dead: list[tuple[bytes, dict[str, Any]]] = []

    @broker.subscriber("commands")
    async def on_outcome(command: CommandEnvelope) -> None:
        """The engine's part: the outcome recorded on the order."""
        outcomes.append(command)
        debit = command.to_command()
        assert isinstance(debit, c.RecordSourceDebit)
        order.record_source_debit(
            debit.reference, Cause(command.actor.to_actor(), debit.command_id, T0)
        )

    @broker.subscriber("dead", decoder=record_values)
    async def on_dead(value: bytes, msg: KafkaMessage) -> None:
        dead.append((value, dict(msg.headers)))

    event = confirmed_event(order)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(b"{not an event", event, topic="events")
        await test_broker.publish(event, topic="events")

    [outcome] = outcomes
    assert outcome.type == "RecordSourceDebit"
    assert outcome.order_id == order.id
    assert outcome.actor.id == "eur-treasury"
    assert ledger.calls == 1
    [(value, headers)] = dead
    assert value == b"{not an event"
    assert headers["worker"] == "eur-treasury"
    assert "unparseable" in headers["error"]
    assert headers["original_topic"] == "events"


async def test_the_outcome_carries_the_events_cause_as_its_trace_and_the_movement_counts() -> None:
    resources = InMemoryResourceDirectory()
    resources.add_treasury_account()
    order = confirmed_buy(resources)
    broker = KafkaBroker()
    done = {"party": "eur-treasury", "leg": "debit", "outcome": "done"}
    before = value_of(MOVEMENTS, "otc_movements_total", **done)

    async def load_order(order_id: UUID) -> Order | None:
        return order if order_id == order.id else None

    def worker_of(publish: Publish, dead_letter: DeadLetter) -> TreasuryWorker:
        return TreasuryWorker(
            EurTreasury(FakeLedger(), resources),
            load_order=load_order,
            publish=publish,
            parked=InMemoryParkedMovements(),
            dead_letter=dead_letter,
        )

    build(SETTINGS, broker, worker_of, Outages("eur-treasury", logging.getLogger("test")))
    traces: list[str | None] = []

    @broker.subscriber("commands")
    async def on_outcome(command: CommandEnvelope, msg: KafkaMessage) -> None:
        del command
        traces.append(msg.headers.get(TRACE_ID))

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            confirmed_event(order), topic="events", headers={CAUSED_BY: "confirming-command"}
        )

    assert traces == ["confirming-command"]
    assert value_of(MOVEMENTS, "otc_movements_total", **done) == before + 1
