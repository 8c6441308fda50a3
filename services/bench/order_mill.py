"""Complete order lifecycles written straight into the event store, fast: the benchmarks' way of
filling it with hundreds of thousands of events without the engine and Kafka in the way.

Each order goes quote, confirm, debit and approve (in the side's order), payout: five events,
decided by the `Order` aggregate itself. `in_flight` orders advance together, one step each per
tick, and each tick is saved in one transaction; orders start on every tick, so one order's
events lie far apart in the log, as when many customers trade at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.money import Currency
from domain.order import (
    Actor,
    ActorKind,
    ApprovalControls,
    ApprovalRequest,
    Cause,
    Order,
    QuoteTerms,
    Side,
    SizeLimits,
)
from services.engine.event_store import Orders

EVENTS_PER_ORDER = 5
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LIMITS = SizeLimits(
    minimum={Currency.EUR: Decimal("10.00"), Currency.USDC: Decimal("10.000000")},
    maximum={Currency.EUR: Decimal("1000000.00"), Currency.USDC: Decimal("1000000.000000")},
)
ANY_RATE = ApprovalControls(collar_bps=10_000, dual_control_eur=Decimal(10**15))
OPERATOR = Actor(ActorKind.OPERATOR, "bench-operator", "Bench Operator")
TREASURY = Actor(ActorKind.SYSTEM, "eur-treasury")
CHAIN = Actor(ActorKind.SYSTEM, "usdc-chain")

Step = Callable[[Order, datetime], None]


def by(actor: Actor, now: datetime) -> Cause:
    return Cause(actor, uuid.uuid4(), now)


def customer_of(order: Order) -> Actor:
    return Actor(ActorKind.CUSTOMER, str(order.customer_id))


def confirm(order: Order, now: datetime) -> None:
    order.confirm(order.side, None, by(customer_of(order), now))


def debit(order: Order, now: datetime) -> None:
    debitor = TREASURY if order.side is Side.BUY else CHAIN
    order.record_source_debit(f"debit-{order.id}", by(debitor, now))


def approve(order: Order, now: datetime) -> None:
    live = ApprovalRequest(rate=None, live_rate=order.rate, provider_quote_id="bench-final")
    order.approve(live, ANY_RATE, by(OPERATOR, now))


def pay_out(order: Order, now: datetime) -> None:
    payer = CHAIN if order.side is Side.BUY else TREASURY
    order.record_payout(1, f"payout-{order.id}", by(payer, now))


STEPS: dict[Side, list[Step]] = {
    Side.BUY: [confirm, debit, approve, pay_out],
    Side.SELL: [confirm, approve, debit, pay_out],
}


def quote(side: Side, now: datetime) -> Order:
    customer = uuid.uuid4()
    amount = Decimal("1000.00") if side is Side.BUY else Decimal("1000.000000")
    return Order.request_quote(
        order_id=uuid.uuid4(),
        customer_id=customer,
        side=side,
        source_id=uuid.uuid4(),
        destination_id=uuid.uuid4(),
        source_amount=amount,
        limits=LIMITS,
        terms=QuoteTerms(Decimal("1.08"), Decimal("1.50"), now + timedelta(minutes=5), "bench"),
        cause=by(Actor(ActorKind.CUSTOMER, str(customer)), now),
    )


class OrderMill:
    """Lifecycles in flight, each advanced one step per `tick`."""

    def __init__(self, orders: Orders, in_flight: int) -> None:
        self.orders = orders
        self.in_flight = in_flight
        self.flying: list[tuple[Order, int]] = []
        """Each order in flight and how many of its steps it has taken."""
        self.started = 0
        self.now = START
        self.events = 0

    def tick(self, starting: int) -> list[Order]:
        """Advance every order in flight one step and start `starting` more (at most up to
        `in_flight`), saved in one transaction; the orders that completed."""
        self.now += timedelta(seconds=1)
        moved: list[Order] = []
        flying: list[tuple[Order, int]] = []
        done: list[tuple[Order, int]] = []
        for order, taken in self.flying:
            STEPS[order.side][taken](order, self.now)
            moved.append(order)
            (done if taken + 1 == len(STEPS[order.side]) else flying).append((order, taken + 1))
        for _ in range(max(0, min(starting, self.in_flight - len(flying)))):
            order = quote(Side.BUY if self.started % 2 == 0 else Side.SELL, self.now)
            self.started += 1
            moved.append(order)
            flying.append((order, 0))
        self.events += sum(len(order.pending_events) for order in moved)
        if moved:
            self.orders.save(*moved)
        self.flying = flying
        return [order for order, _ in done]

    def run(self, orders: int) -> list[Order]:
        """`orders` complete lifecycles, begun `in_flight / 5` a tick, so that ticks hold orders
        at every step; the orders."""
        completed: list[Order] = []
        per_tick = max(1, self.in_flight // EVENTS_PER_ORDER)
        while len(completed) < orders:
            completed += self.tick(min(per_tick, orders - self.started))
        return completed
