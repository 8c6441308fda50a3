"""The treasury workers on fakes: which event moves which leg, outcomes classified (done,
refused, unknown), unknown reconciled by reference and parked, never a failure; poison events
dead-lettered without holding up other orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain import commands as c
from domain.order import Actor, Cause, Leg, Order, Side, Status
from services.adapters.fakes import FakeChain, FakeLedger
from services.contracts import EventEnvelope, event_id, event_type
from services.dead_letters import KafkaRecord
from services.resources.fake import InMemoryResourceDirectory
from services.workers.movers import EurTreasury, Mover, UsdcChain
from services.workers.outcomes import Refused, reported
from services.workers.parked import InMemoryParkedMovements
from services.workers.treasury import TreasuryWorker, WorkerPolicy
from tests.unit.strategies import ANY_RATE, CUSTOMER, OPERATOR, T0, at_live, new_order

NOW = T0 + timedelta(seconds=10)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Desk:
    """Orders in the state a worker meets them, the worker's fakes, and what it reported."""

    def __init__(self, party: str) -> None:
        self.resources = InMemoryResourceDirectory()
        self.customer_id = UUID(CUSTOMER.id)
        self.account = self.resources.add_account(self.customer_id)
        self.wallet = self.resources.add_wallet(self.customer_id)
        self.resources.add_treasury_account()
        self.resources.add_treasury_wallet()
        self.ledger = FakeLedger()
        self.chain = FakeChain()
        self.orders: dict[UUID, Order] = {}
        self.published: list[c.Command] = []
        self.dead: list[tuple[KafkaRecord, str]] = []
        self.parked = InMemoryParkedMovements()
        self.clock = Clock()
        mover: Mover = (
            EurTreasury(self.ledger, self.resources)
            if party == "eur-treasury"
            else UsdcChain(self.chain, self.resources)
        )

        async def load(order_id: UUID) -> Order | None:
            return self.orders.get(order_id)

        async def publish(command: c.Command) -> None:
            self.published.append(command)

        async def dead_letter(record: KafkaRecord, error: str) -> None:
            self.dead.append((record, error))

        async def no_sleep(_: float) -> None:
            return None

        self.worker = TreasuryWorker(
            mover,
            load_order=load,
            publish=publish,
            parked=self.parked,
            dead_letter=dead_letter,
            policy=WorkerPolicy(flag_after=timedelta(minutes=5)),
            clock=self.clock,
            sleep=no_sleep,
            draw=lambda: 1.0,
        )

    def order(self, side: Side, *steps: Callable[[Order], None]) -> Order:
        buy = side is Side.BUY
        order = new_order(
            side,
            "100.00" if buy else "100.000000",
            "1.08" if buy else "0.92",
            "0",
            order_id=uuid4(),
        )
        if buy:
            order.source_id, order.destination_id = self.account.id, self.wallet.id
        else:
            order.source_id, order.destination_id = self.wallet.id, self.account.id
        for step in steps:
            step(order)
        self.orders[order.id] = order
        return order

    def record(self, order: Order, event: type[Order.Event]) -> KafkaRecord:
        envelope = EventEnvelope(
            event_id=event_id(order.id, order.version),
            type=event_type(event.__name__),
            order_id=order.id,
            customer_id=order.customer_id,
            side=order.side.value,
            version=order.version,
            position=order.version,
            occurred_at=NOW,
            data={},
        )
        return KafkaRecord(envelope.to_bytes(), str(order.id).encode(), "events", 0, 0)


def cause(actor: Actor = CUSTOMER) -> Cause:
    return Cause(actor, uuid4(), NOW)


def confirmed(order: Order) -> None:
    order.confirm(order.side, None, cause())


def debited(order: Order) -> None:
    order.record_source_debit("bank-1", cause())


def approved(order: Order) -> None:
    order.approve(at_live(order.rate), ANY_RATE, cause(OPERATOR))


def rejected(order: Order) -> None:
    order.reject("compliance", cause(OPERATOR))


@pytest.mark.parametrize(
    ("party", "side", "steps", "event", "leg", "amount"),
    [
        ("eur-treasury", Side.BUY, (confirmed,), Order.Confirmed, Leg.DEBIT, "100.00"),
        (
            "eur-treasury",
            Side.BUY,
            (confirmed, debited, rejected),
            Order.Rejected,
            Leg.REFUND,
            "100.00",
        ),
        (
            "usdc-chain",
            Side.BUY,
            (confirmed, debited, approved),
            Order.Approved,
            Leg.PAYOUT,
            "108.000000",
        ),
        ("usdc-chain", Side.SELL, (confirmed, approved), Order.Approved, Leg.DEBIT, "100.000000"),
        (
            "eur-treasury",
            Side.SELL,
            (confirmed, approved, debited),
            Order.SourceDebited,
            Leg.PAYOUT,
            "92.00",
        ),
    ],
)
async def test_each_event_moves_its_leg_by_its_party_once(  # noqa: PLR0913 - one case per row
    *,
    party: str,
    side: Side,
    steps: tuple[Callable[[Order], None], ...],
    event: type[Order.Event],
    leg: Leg,
    amount: str,
) -> None:
    desk = Desk(party)
    order = desk.order(side, *steps)

    await desk.worker.handle_records([desk.record(order, event)])

    [reported] = desk.published
    assert reported.moves() is leg
    assert reported.actor.id == party
    movements = desk.ledger.booked if party == "eur-treasury" else desk.chain.booked
    [(reference, transfer)] = movements.items()
    assert reference.startswith(f"{order.id}-{leg}")
    assert transfer.amount == Decimal(amount)


@pytest.mark.parametrize(
    ("party", "side", "steps", "event"),
    [
        ("usdc-chain", Side.BUY, (confirmed,), Order.Confirmed),
        ("eur-treasury", Side.BUY, (confirmed, debited, approved), Order.Approved),
        ("eur-treasury", Side.SELL, (confirmed, approved), Order.Approved),
        ("eur-treasury", Side.BUY, (confirmed, debited), Order.SourceDebited),
    ],
)
async def test_an_event_of_another_party_or_no_movement_moves_nothing(
    party: str, side: Side, steps: tuple[Callable[[Order], None], ...], event: type[Order.Event]
) -> None:
    desk = Desk(party)
    order = desk.order(side, *steps)

    await desk.worker.handle_records([desk.record(order, event)])

    assert desk.published == []
    assert desk.ledger.calls == desk.chain.calls == 0


async def test_a_redelivered_event_after_the_outcome_moves_nothing() -> None:
    desk = Desk("eur-treasury")
    order = desk.order(Side.BUY, confirmed, debited)

    await desk.worker.handle_records([desk.record(order, Order.Confirmed)])

    assert desk.published == []
    assert desk.ledger.calls == 0


async def test_a_refusal_on_the_list_is_reported_as_a_failure() -> None:
    desk = Desk("eur-treasury")
    desk.ledger.refuse = "INSUFFICIENT_FUNDS"
    order = desk.order(Side.BUY, confirmed)

    await desk.worker.handle_records([desk.record(order, Order.Confirmed)])

    [failure] = desk.published
    assert isinstance(failure, c.RecordSourceDebitFailure)
    assert failure.reason.startswith("INSUFFICIENT_FUNDS")


async def test_a_refused_refund_is_reported_as_a_refund_failure() -> None:
    desk = Desk("eur-treasury")
    desk.ledger.refuse = "ACCOUNT_CLOSED"
    order = desk.order(Side.BUY, confirmed, debited, rejected)

    await desk.worker.handle_records([desk.record(order, Order.Rejected)])

    [failure] = desk.published
    assert isinstance(failure, c.RecordRefundFailure)
    assert failure.attempt == 1


async def test_a_lost_answer_is_read_back_by_reference_and_reported_done() -> None:
    desk = Desk("eur-treasury")
    desk.ledger.lose_answers = 1
    order = desk.order(Side.BUY, confirmed)

    await desk.worker.handle_records([desk.record(order, Order.Confirmed)])

    [done] = desk.published
    assert isinstance(done, c.RecordSourceDebit)
    assert len(desk.ledger.booked) == 1
    assert await desk.parked.list() == []


async def test_an_unknown_outcome_is_parked_never_failed_and_retried_with_the_same_reference() -> (
    None
):
    desk = Desk("usdc-chain")
    desk.chain.fail_before = 1
    order = desk.order(Side.BUY, confirmed, debited, approved)

    await desk.worker.handle_records([desk.record(order, Order.Approved)])

    assert desk.published == []
    [(_, parked)] = await desk.parked.list()
    assert (parked.leg, parked.attempt) == (Leg.PAYOUT, 1)
    desk.clock.now += timedelta(seconds=5)
    assert await desk.worker.retry_parked() == 1
    [paid] = desk.published
    assert isinstance(paid, c.RecordPayout)
    assert list(desk.chain.booked) == [f"{order.id}-payout-1"]
    assert await desk.parked.list() == []


async def test_a_movement_unknown_past_the_bound_flags_the_order_and_keeps_trying() -> None:
    desk = Desk("eur-treasury")
    desk.ledger.fail_before = 10_000
    desk.ledger.unreadable = True
    order = desk.order(Side.BUY, confirmed)
    await desk.worker.handle_records([desk.record(order, Order.Confirmed)])

    for _ in range(8):
        desk.clock.now += timedelta(minutes=1)
        await desk.worker.retry_parked()

    flags = [cmd for cmd in desk.published if isinstance(cmd, c.RecordMovementUnresolved)]
    assert len(flags) == 1
    assert (flags[0].leg, flags[0].attempt) == (Leg.DEBIT, 1)
    assert not any(isinstance(cmd, c.RecordSourceDebitFailure) for cmd in desk.published)
    [(_, parked)] = await desk.parked.list()
    assert parked.flagged
    desk.ledger.fail_before, desk.ledger.unreadable = 0, False
    desk.clock.now += timedelta(minutes=2)
    await desk.worker.retry_parked()
    assert isinstance(desk.published[-1], c.RecordSourceDebit)
    assert await desk.parked.list() == []


async def test_a_parked_movement_the_order_no_longer_waits_for_is_forgotten() -> None:
    desk = Desk("eur-treasury")
    desk.ledger.fail_before = 1
    order = desk.order(Side.BUY, confirmed)
    await desk.worker.handle_records([desk.record(order, Order.Confirmed)])
    debited(order)

    desk.clock.now += timedelta(minutes=1)
    await desk.worker.retry_parked()

    assert desk.published == []
    assert await desk.parked.list() == []


async def test_a_transfer_booked_otherwise_under_our_reference_is_never_taken_for_done() -> None:
    desk = Desk("eur-treasury")
    order = desk.order(Side.BUY, confirmed)
    desk.ledger.book(f"{order.id}-debit", "someone", "else", Decimal("5.00"))
    desk.ledger.calls = 0
    desk.ledger.fail_before = 1

    await desk.worker.handle_records([desk.record(order, Order.Confirmed)])

    assert desk.published == []
    [(_, parked)] = await desk.parked.list()
    assert "not as asked" in parked.last_error


async def test_a_poison_event_is_dead_lettered_and_other_orders_go_on() -> None:
    desk = Desk("eur-treasury")
    good = desk.order(Side.BUY, confirmed)
    orphan = desk.order(Side.BUY, confirmed)
    del desk.orders[orphan.id]
    garbage = KafkaRecord(b"{not json", b"k", "events", 0, 7)

    await desk.worker.handle_records(
        [garbage, desk.record(orphan, Order.Confirmed), desk.record(good, Order.Confirmed)]
    )

    assert [cmd.order_id for cmd in desk.published] == [good.id]
    assert [record.offset for record, _ in desk.dead] == [7, 0]
    assert "unparseable" in desk.dead[0][1]
    assert "failed 3 times" in desk.dead[1][1]


def test_outcome_command_ids_are_deterministic() -> None:
    desk = Desk("eur-treasury")
    order = desk.order(Side.BUY, confirmed)

    first = reported(order, Leg.DEBIT, 1, Refused("X", "y"), desk.worker.actor, NOW)
    second = reported(order, Leg.DEBIT, 1, Refused("X", "y"), desk.worker.actor, NOW)

    assert first.command_id == second.command_id
    assert order.status is Status.DEBIT_PENDING
