"""The command processor on an in-memory event store and fakes: no Kafka, no PostgreSQL.

Replies and redelivery, idempotency keys, the conflict fallback, command authority and the cut
of a batch before a command whose lookups depend on an earlier command of its own order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from domain import commands as c
from domain.errors import ErrorCode
from domain.order import ApprovalControls, Side
from services.adapters.fakes import FakePricing, FakeWalletBalances, FixedClock
from services.commanding import new_command
from services.contracts import ReplyEnvelope
from services.engine.event_store import Orders
from services.engine.handlers import Policy
from services.engine.processor import CommandProcessor
from services.resources.fake import InMemoryResourceDirectory
from tests.support import Orderer
from tests.unit.strategies import LIMITS, T0

POLICY = Policy(
    quote_ttl=timedelta(seconds=30),
    limits=LIMITS,
    approval=ApprovalControls(collar_bps=200, dual_control_eur=Decimal("100000.00")),
)


class FlakyOrders(Orders):
    """The in-memory store, whose next batch saves conflict as often as told."""

    conflicts = 0

    def save_all(self, aggregates: Sequence[Aggregate]) -> Any:  # noqa: ANN401 - the library's recordings
        if self.conflicts and len(aggregates) > 1:
            self.conflicts -= 1
            raise RecordConflictError("another writer got there first (fake)")
        return super().save_all(aggregates)


class Engine:
    def __init__(self) -> None:
        self.orders = FlakyOrders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.resources = InMemoryResourceDirectory()
        self.customer_id = uuid4()
        self.account = self.resources.add_account(self.customer_id)
        self.wallet = self.resources.add_wallet(self.customer_id)
        self.pricing = FakePricing()
        self.processor = CommandProcessor(
            self.orders,
            pricing=self.pricing,
            balances=FakeWalletBalances(),
            resources=self.resources,
            policy=POLICY,
            clock=FixedClock(T0 + timedelta(seconds=1)).now,
        )

    def orderer(self) -> Orderer:
        return Orderer(self.customer_id)

    def buy(self, order: Orderer, **extra: object) -> c.RequestQuote:
        return order.quote(Side.BUY, self.account.id, self.wallet.id, "100.00", **extra)

    def sell(self, order: Orderer) -> c.RequestQuote:
        return order.quote(Side.SELL, self.wallet.id, self.account.id, "100.000000")

    async def send(self, *commands: c.Command) -> list[ReplyEnvelope]:
        return await self.processor.process(commands)

    def events(self, order_id: UUID) -> list[str]:
        return [type(e).__name__ for e in self.orders.events.get(order_id)]


@pytest.fixture
def engine() -> Engine:
    return Engine()


async def test_a_redelivered_command_gets_the_same_reply_and_changes_nothing(
    engine: Engine,
) -> None:
    order = engine.orderer()
    quote, confirm = engine.buy(order), order.confirm(Side.BUY)
    first = await engine.send(quote, confirm)

    again = await engine.send(quote, confirm)

    assert [r.model_dump(exclude={"position"}) for r in again] == [
        r.model_dump(exclude={"position"}) for r in first
    ]
    assert engine.events(order.order_id) == ["Quoted", "Confirmed"]
    assert engine.pricing.calls == 1


async def test_an_idempotency_key_replays_its_reply_and_refuses_another_request(
    engine: Engine,
) -> None:
    key = uuid4()
    first = await engine.send(engine.buy(engine.orderer(), idempotency_key=key))

    replay = await engine.send(engine.buy(engine.orderer(), idempotency_key=key))
    other = engine.orderer().quote(
        Side.BUY, engine.account.id, engine.wallet.id, "200.00", idempotency_key=key
    )
    reused = await engine.send(other)

    assert replay[0].replayed
    assert replay[0].order == first[0].order
    assert reused[0].error is not None
    assert reused[0].error.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


async def test_a_conflicting_batch_is_redone_one_command_at_a_time(engine: Engine) -> None:
    orders = [engine.orderer() for _ in range(3)]
    engine.orders.conflicts = 1

    replies = await engine.send(*(engine.buy(order) for order in orders))

    assert all(reply.ok for reply in replies)
    assert all(engine.events(order.order_id) == ["Quoted"] for order in orders)


async def test_a_command_from_an_actor_not_allowed_is_refused_and_changes_nothing(
    engine: Engine,
) -> None:
    order = engine.orderer()
    await engine.send(engine.buy(order), order.confirm(Side.BUY))
    forged = new_command(
        c.RecordSourceDebit,
        order_id=order.order_id,
        customer_id=order.customer_id,
        actor=order.me,
        reference="forged",
    )
    wrong_party = order.debited().model_copy(update={"actor": c.ActorRef.system("usdc-chain")})

    replies = await engine.send(forged, wrong_party)

    assert [r.error.code if r.error else None for r in replies] == [
        ErrorCode.ACTOR_NOT_ALLOWED,
        ErrorCode.ACTOR_NOT_ALLOWED,
    ]
    assert engine.events(order.order_id) == ["Quoted", "Confirmed"]


async def test_an_approval_after_its_quote_in_one_batch_is_priced_on_the_order(
    engine: Engine,
) -> None:
    order = engine.orderer()

    replies = await engine.send(engine.sell(order), order.confirm(Side.SELL), order.approve())

    assert all(reply.ok for reply in replies), [r.error for r in replies]
    assert engine.events(order.order_id) == ["Quoted", "Confirmed", "Approved"]


async def test_an_approval_is_refused_without_a_live_price(engine: Engine) -> None:
    order = engine.orderer()
    await engine.send(engine.sell(order), order.confirm(Side.SELL))
    engine.pricing.available = False

    [reply] = await engine.send(order.approve("0.92"))

    assert reply.error is not None
    assert reply.error.code is ErrorCode.QUOTE_UNAVAILABLE
    assert engine.events(order.order_id) == ["Quoted", "Confirmed"]


async def test_a_price_slower_than_the_lookup_deadline_is_quote_unavailable(
    engine: Engine,
) -> None:
    engine.processor.lookout.deadline_seconds = 0.05
    engine.pricing.delay_seconds = 5.0
    order = engine.orderer()

    [reply] = await asyncio.wait_for(engine.send(engine.buy(order)), timeout=2)

    assert reply.error is not None
    assert reply.error.code is ErrorCode.QUOTE_UNAVAILABLE
    assert engine.events(order.order_id) == []


async def test_a_confirm_is_answered_without_waiting_for_another_orders_price(
    engine: Engine,
) -> None:
    confirmed, quoted = engine.orderer(), engine.orderer()
    await engine.send(engine.buy(confirmed))
    engine.pricing.delay_seconds = 0.2
    heard: list[list[str]] = []

    async def ready(part: list[tuple[int, Any]]) -> None:
        heard.append([str(index) for index, _ in part])

    answers = await engine.processor.process_timed(
        [engine.buy(quoted), confirmed.confirm(Side.BUY)], ready
    )

    assert all(reply.ok for reply, _ in answers), [reply.error for reply, _ in answers]
    assert heard == [["1"], ["0"]]  # the confirm (place 1) first, then the quote
