"""Orders for the webhook tests: complete buy and sell lifecycles decided in process (the
engine's CommandProcessor on a test database, fake pricing), and their events as the relay
publishes them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from domain import commands as c
from domain.order import Side
from services.adapters.fakes import FakePricing, FakeWalletBalances
from services.contracts import EventEnvelope
from services.engine.__main__ import policy_of
from services.engine.event_store import open_orders
from services.engine.processor import CommandProcessor
from services.relay.relay import envelope_of
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from tests.support import Customer, Orderer


def buy(customer: Customer) -> list[c.Command]:
    order = Orderer(customer.id)
    return [
        order.quote(Side.BUY, customer.account, customer.wallet, "100.00"),
        order.confirm(Side.BUY),
        order.debited(),
        order.approve(),
        order.paid_out(),
    ]


def sell(customer: Customer) -> list[c.Command]:
    order = Orderer(customer.id)
    return [
        order.quote(Side.SELL, customer.wallet, customer.account, "100.000000"),
        order.confirm(Side.SELL),
        order.approve(),
        order.debited(),
        order.paid_out(),
    ]


async def settle_orders(settings: Settings, lifecycles: list[list[c.Command]]) -> None:
    """Decide every command of every lifecycle, in order, into the event store."""
    orders = open_orders(settings)
    try:
        async with PostgresResourceDirectory(settings) as resources:
            processor = CommandProcessor(
                orders,
                pricing=FakePricing(),
                balances=FakeWalletBalances(),
                resources=resources,
                policy=policy_of(settings),
                clock=lambda: datetime.now(UTC),
            )
            for commands in lifecycles:
                for command in commands:
                    [reply] = await processor.process_one(command)
                    assert reply.ok, reply.error
    finally:
        orders.close()


def envelopes(settings: Settings) -> list[EventEnvelope]:
    """Every order event in the store, as the relay publishes it, in log order."""

    def read() -> list[EventEnvelope]:
        orders = open_orders(settings)
        try:
            found = []
            for notification in orders.recorder.select_notifications(start=1, limit=100_000):
                envelope = envelope_of(orders, notification)
                if envelope is not None:
                    found.append(envelope)
            return found
        finally:
            orders.close()

    return read()


async def read_envelopes(settings: Settings) -> list[EventEnvelope]:
    return await asyncio.to_thread(envelopes, settings)
