"""Redelivery on the real broker and database: every command published twice gives identical
replies and appends nothing; idempotency keys replay; bad records go to the dead-letter topic."""

from __future__ import annotations

import uuid

import pytest

from domain.commands import Command
from domain.order import Side
from services import kafka
from services.command_client import CommandClient
from services.contracts import CORRELATION_ID, ERROR_HEADER, REPLY_TO, CommandEnvelope
from services.settings import Settings
from tests.support import Customer, Orderer, read_topic, stored_order_events

pytestmark = pytest.mark.integration


async def twice(
    client: CommandClient, command: Command
) -> tuple[dict[str, object], dict[str, object]]:
    first = await client.send(command, timeout=30)
    second = await client.send(command, timeout=30)
    return first.model_dump(), second.model_dump()


async def test_every_command_sent_twice_gives_identical_replies_and_no_extra_events(
    client: CommandClient,
    customer: Customer,
    otc_settings: Settings,
) -> None:
    buy = Orderer(customer.id)
    sell = Orderer(customer.id)
    commands: list[Command] = [
        buy.quote(Side.BUY, customer.account, customer.wallet, "500.00"),
        buy.confirm(Side.BUY),
        buy.debited(),
        buy.approve("1.0700"),
        buy.payout_failed(),
        buy.retry_payout(),
        buy.paid_out(attempt=2),
        sell.quote(Side.SELL, customer.wallet, customer.account, "100.000000"),
        sell.requote(),
        sell.confirm(Side.SELL),
        sell.reject(),
    ]

    pairs = [await twice(client, command) for command in commands]

    for first, second in pairs:
        assert first["ok"] is True
        assert first == second
    events = stored_order_events(otc_settings)
    assert [(e[2]) for e in events if e[0] == buy.order_id] == [
        "Quoted",
        "Confirmed",
        "SourceDebited",
        "Approved",
        "PayoutFailed",
        "PayoutRetried",
        "PaidOut",
    ]
    assert [(e[2]) for e in events if e[0] == sell.order_id] == [
        "Quoted",
        "Requoted",
        "Confirmed",
        "Rejected",
    ]


async def test_a_duplicate_worker_outcome_with_a_new_command_id_changes_nothing(
    client: CommandClient,
    customer: Customer,
    otc_settings: Settings,
) -> None:
    order = Orderer(customer.id)
    for command in (
        order.quote(Side.BUY, customer.account, customer.wallet, "50.00"),
        order.confirm(Side.BUY),
    ):
        assert (await client.send(command, timeout=30)).ok
    first = await client.send(order.debited("bank-1"), timeout=30)
    again = await client.send(order.debited("bank-1"), timeout=30)
    conflicting = await client.send(order.debited("bank-2"), timeout=30)

    assert again.ok
    assert again.order == first.order
    assert conflicting.error is not None
    assert conflicting.error.code == "INVALID_TRANSITION"
    assert len([e for e in stored_order_events(otc_settings) if e[0] == order.order_id]) == 3


async def test_idempotency_key_replays_the_reply_and_refuses_another_request(
    client: CommandClient,
    customer: Customer,
) -> None:
    order = Orderer(customer.id)
    key = uuid.uuid4()
    assert (
        await client.send(
            order.quote(Side.BUY, customer.account, customer.wallet, "75.00"), timeout=30
        )
    ).ok

    first = await client.send(order.confirm(Side.BUY, idempotency_key=key), timeout=30)
    retried = await client.send(order.confirm(Side.BUY, idempotency_key=key), timeout=30)
    other = await client.send(
        order.confirm(Side.BUY, idempotency_key=key, max_slippage_bps=5), timeout=30
    )

    assert (first.ok, first.replayed) == (True, False)
    assert (retried.ok, retried.replayed, retried.order) == (True, True, first.order)
    assert retried.position == first.position
    assert other.error is not None
    assert other.error.code == "IDEMPOTENCY_KEY_REUSED"


async def test_a_retried_quote_with_the_same_key_returns_the_first_order(
    client: CommandClient,
    customer: Customer,
    otc_settings: Settings,
) -> None:
    key = uuid.uuid4()
    first = await client.send(
        Orderer(customer.id).quote(
            Side.BUY, customer.account, customer.wallet, "20.00", idempotency_key=key
        ),
        timeout=30,
    )
    retry = await client.send(
        Orderer(customer.id).quote(
            Side.BUY, customer.account, customer.wallet, "20.00", idempotency_key=key
        ),
        timeout=30,
    )

    assert first.order is not None
    assert retry.order == first.order
    assert retry.replayed
    assert len(stored_order_events(otc_settings)) == 1


async def test_unparseable_records_are_dead_lettered_and_the_partition_moves_on(
    client: CommandClient,
    customer: Customer,
    otc_settings: Settings,
) -> None:
    order = Orderer(customer.id)
    bad = CommandEnvelope.of(order.quote(Side.BUY, customer.account, customer.wallet, "30.00"))
    bad_payload = bad.model_copy(
        update={"payload": {"side": "buy", "sourceAmount": 12.5}}
    ).to_bytes()
    producer = kafka.producer(otc_settings, client_id="otc-tests")
    await producer.start()
    try:
        key = str(order.order_id).encode()
        await producer.send_and_wait(otc_settings.commands_topic, b"{not json", key=key)
        await producer.send_and_wait(
            otc_settings.commands_topic,
            bad_payload,
            key=key,
            headers=[(REPLY_TO, b"someone"), (CORRELATION_ID, b"c-1")],
        )
    finally:
        await producer.stop()

    good = await client.send(
        order.quote(Side.BUY, customer.account, customer.wallet, "30.00"), timeout=30
    )

    assert good.ok
    dead = await read_topic(otc_settings, otc_settings.dlq_topic)
    assert [r.value for r in dead] == [b"{not json", bad_payload]
    errors = [dict(r.headers)[ERROR_HEADER].decode() for r in dead]
    assert all(error.startswith("unparseable command") for error in errors)
    replies = await read_topic(otc_settings, otc_settings.replies_topic)
    refused = [r for r in replies if dict(r.headers).get(CORRELATION_ID) == b"c-1"]
    assert len(refused) == 1
    assert b"VALIDATION_ERROR" in refused[0].value
