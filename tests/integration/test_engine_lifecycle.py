"""The engine on the real broker and database: orders driven through every status by commands,
with the test playing the operator and the workers; the relay publishes every event in order."""

from __future__ import annotations

import pytest

from domain.commands import Command
from domain.order import Side
from services.command_client import CommandClient
from services.contracts import ReplyEnvelope
from tests.support import Customer, Orderer

pytestmark = pytest.mark.integration

ENGINE_READY = "engine: consuming"
RELAY_READY = "relay: publishing"


async def ok(client: CommandClient, command: Command) -> ReplyEnvelope:
    reply = await client.send(command, timeout=30)
    assert reply.ok, reply.error
    return reply


def status(reply: ReplyEnvelope) -> str:
    assert reply.order is not None
    return str(reply.order["status"])


async def test_buy_goes_through_every_status_to_completed(
    client: CommandClient, customer: Customer
) -> None:
    order = Orderer(customer.id)
    statuses = [
        status(
            await ok(client, order.quote(Side.BUY, customer.account, customer.wallet, "1000.00"))
        ),
        status(await ok(client, order.confirm(Side.BUY))),
        status(await ok(client, order.debited())),
        status(await ok(client, order.approve("1.0790"))),
        status(await ok(client, order.paid_out())),
    ]

    assert statuses == [
        "quoted",
        "debit_pending",
        "pending_approval",
        "payout_pending",
        "completed",
    ]


async def test_sell_goes_through_every_status_to_completed(
    client: CommandClient, customer: Customer
) -> None:
    order = Orderer(customer.id)
    replies = [
        await ok(client, order.quote(Side.SELL, customer.wallet, customer.account, "250.000000")),
        await ok(client, order.confirm(Side.SELL)),
        await ok(client, order.approve("0.9150")),
        await ok(client, order.debited()),
        await ok(client, order.paid_out()),
    ]

    assert [status(r) for r in replies] == [
        "quoted",
        "pending_approval",
        "debit_pending",
        "payout_pending",
        "completed",
    ]
    final = replies[-1].order
    assert final is not None
    assert (final["sourceAmount"], final["destinationAmount"], final["rate"]) == (
        "250.000000",
        "228.75",
        "0.9150",
    )
    assert final["indicativeRate"] == "0.9200"
    positions = [r.position or 0 for r in replies]
    assert positions == sorted(positions)
