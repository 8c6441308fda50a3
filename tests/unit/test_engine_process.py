"""The engine process wired by `build` on FastStream's in-memory Kafka broker and an in-memory
event store: commands in, replies out to the instance that waits; a redelivered command changes
nothing; a record that does not parse goes to the dead-letter topic, the rest of its batch on."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from domain import commands as c
from domain.errors import ErrorCode
from domain.order import ApprovalControls, Side
from services.adapters.fakes import FakePricing, FakeWalletBalances, FixedClock
from services.batches import record_values
from services.contracts import CORRELATION_ID, REPLY_TO, TRACE_ID, CommandEnvelope, ReplyEnvelope
from services.engine.__main__ import build
from services.engine.event_store import Orders
from services.engine.handlers import Policy
from services.engine.processor import CommandProcessor
from services.metrics import ENGINE_COMMANDS
from services.resilience import Outages
from services.resources.fake import InMemoryResourceDirectory
from services.settings import Settings
from tests.metric_values import value_of
from tests.support import Orderer
from tests.unit.strategies import LIMITS, T0

SETTINGS = Settings(
    pg_password="unused", commands_topic="commands", replies_topic="replies", dlq_topic="dead"
)
POLICY = Policy(
    quote_ttl=timedelta(seconds=30),
    limits=LIMITS,
    approval=ApprovalControls(collar_bps=200, dual_control_eur=Decimal("100000.00")),
)
GATEWAY = "gateway-1"


@dataclass
class Seen:
    replies: list[tuple[ReplyEnvelope, dict[str, Any]]] = field(default_factory=list)
    dead: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)


def engine_on(broker: KafkaBroker) -> tuple[Orders, Orderer, c.RequestQuote, Seen]:
    """The engine subscribed to `broker`, an order to quote, and what comes out of it."""
    orders = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    resources = InMemoryResourceDirectory()
    customer = uuid.uuid4()
    account, wallet = resources.add_account(customer), resources.add_wallet(customer)
    processor = CommandProcessor(
        orders,
        pricing=FakePricing(),
        balances=FakeWalletBalances(),
        resources=resources,
        policy=POLICY,
        clock=FixedClock(T0 + timedelta(seconds=1)).now,
    )

    async def send(
        topic: str, value: bytes, key: bytes | None, headers: dict[str, str]
    ) -> Awaitable[Any]:
        await broker.publish(value, topic=topic, key=key, headers=headers)
        return asyncio.sleep(0)

    build(SETTINGS, broker, processor, send, Outages("engine", logging.getLogger("test")))
    seen = Seen()

    @broker.subscriber("replies")
    async def on_reply(reply: ReplyEnvelope, msg: KafkaMessage) -> None:
        seen.replies.append((reply, dict(msg.headers)))

    @broker.subscriber("dead", decoder=record_values)
    async def on_dead(value: bytes, msg: KafkaMessage) -> None:
        seen.dead.append((value, dict(msg.headers)))

    order = Orderer(customer)
    return orders, order, order.quote(Side.BUY, account.id, wallet.id, "100.00"), seen


def waited_for(command: c.Command) -> dict[str, str]:
    return {REPLY_TO: GATEWAY, CORRELATION_ID: str(command.command_id)}


async def test_a_command_is_answered_to_the_instance_that_waits_and_once_only() -> None:
    broker = KafkaBroker()
    orders, order, quote, seen = engine_on(broker)
    value = CommandEnvelope.of(quote).to_bytes()
    key = str(quote.order_id).encode()

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic="commands", key=key, headers=waited_for(quote))
        await test_broker.publish(value, topic="commands", key=key, headers=waited_for(quote))

    [(first, headers), (again, _)] = seen.replies
    assert first.ok
    assert first.command_id == quote.command_id
    assert first.order is not None
    assert first.order["status"] == "quoted"
    assert headers[REPLY_TO] == GATEWAY
    assert headers[CORRELATION_ID] == str(quote.command_id)
    assert again.order == first.order
    assert [type(e).__name__ for e in orders.events.get(order.order_id)] == ["Quoted"]
    assert seen.dead == []


async def test_a_bad_record_is_dead_lettered_and_answered_and_its_batch_goes_on() -> None:
    broker = KafkaBroker()
    orders, order, quote, seen = engine_on(broker)
    unknown = CommandEnvelope.of(quote).model_copy(
        update={"command_id": uuid.uuid4(), "type": "Teleport"}
    )

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            b"not a command",
            unknown.to_bytes(),
            CommandEnvelope.of(quote).to_bytes(),
            topic="commands",
            headers=waited_for(quote) | {CORRELATION_ID: "batch"},
        )

    assert [value for value, _ in seen.dead] == [b"not a command", unknown.to_bytes()]
    assert all(headers["original_topic"] == "commands" for _, headers in seen.dead)
    assert "unparseable command" in seen.dead[0][1]["error"]
    refused = [reply for reply, _ in seen.replies if not reply.ok]
    assert [(reply.command_id, reply.error and reply.error.code) for reply in refused] == [
        (unknown.command_id, ErrorCode.VALIDATION_ERROR)
    ]
    assert [reply.command_id for reply, _ in seen.replies if reply.ok] == [quote.command_id]
    assert [type(e).__name__ for e in orders.events.get(order.order_id)] == ["Quoted"]


async def test_a_reply_repeats_the_commands_trace_id_and_the_answer_is_counted() -> None:
    broker = KafkaBroker()
    _, _, quote, seen = engine_on(broker)
    counted = {"type": "RequestQuote", "result": "ok"}
    before = value_of(ENGINE_COMMANDS, "otc_engine_commands_total", **counted)
    headers = waited_for(quote) | {TRACE_ID: "req-traced-1"}

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            CommandEnvelope.of(quote).to_bytes(), topic="commands", headers=headers
        )

    [(reply, reply_headers)] = seen.replies
    assert reply.ok
    assert reply_headers[TRACE_ID] == "req-traced-1"
    assert value_of(ENGINE_COMMANDS, "otc_engine_commands_total", **counted) == before + 1


async def test_a_refusal_is_counted_under_its_error_code() -> None:
    broker = KafkaBroker()
    _, order, _, _ = engine_on(broker)
    refused = {"type": "CancelOrder", "result": "ORDER_NOT_FOUND"}
    before = value_of(ENGINE_COMMANDS, "otc_engine_commands_total", **refused)
    cancel = order.cancel()

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            CommandEnvelope.of(cancel).to_bytes(), topic="commands", headers=waited_for(cancel)
        )

    assert value_of(ENGINE_COMMANDS, "otc_engine_commands_total", **refused) == before + 1
