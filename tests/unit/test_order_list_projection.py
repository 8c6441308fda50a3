"""The `order_list` rows, built from events without a database: each row equals the public view
of the order at the same version, and the projection writes rows and tracking together."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.idempotency import IdempotencyKey
from domain.money import Currency
from domain.order import (
    Actor,
    ActorKind,
    Cause,
    Order,
    QuoteTerms,
    Side,
    SizeLimits,
    Status,
)
from domain.views import OrderView
from projections.order_list import (
    MissingEventsError,
    OrderListProjection,
    OrderListRow,
    OrderListView,
    row_after,
)
from projections.order_list.view import Fold
from services import metrics
from services.projector.measured import MeasuredOrderListProjection
from tests.metric_values import value_of
from tests.unit.strategies import ANY_RATE, at_live

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
QUOTE_TTL = timedelta(seconds=30)
LIMITS = SizeLimits(
    minimum={Currency.EUR: Decimal("10.00"), Currency.USDC: Decimal("10.000000")},
    maximum={Currency.EUR: Decimal("1000000.00"), Currency.USDC: Decimal("1000000.000000")},
)
OPERATOR = Actor(ActorKind.OPERATOR, "operator-7")
WORKER = Actor(ActorKind.SYSTEM, "worker")
SWEEPER = Actor(ActorKind.SYSTEM, "expiry-sweeper")
APP = "Orders"


@dataclass
class Desk:
    """Issues causes with fresh command ids at a clock that the test moves on."""

    now: datetime = T0
    customer: Actor = field(default_factory=lambda: Actor(ActorKind.CUSTOMER, str(uuid.uuid4())))

    def cause(self, actor: Actor | None = None) -> Cause:
        return Cause(actor or self.customer, uuid.uuid4(), self.now)

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def quote(self, side: Side, rate: str = "1.08", *, order_id: UUID | None = None) -> Order:
        amount, fee = ("1000.00", "1.50") if side is Side.BUY else ("250.000000", "0.500000")
        return Order.request_quote(
            order_id=order_id or uuid.uuid4(),
            customer_id=UUID(self.customer.id),
            side=side,
            source_id=uuid.uuid4(),
            destination_id=uuid.uuid4(),
            source_amount=Decimal(amount),
            limits=LIMITS,
            terms=QuoteTerms(Decimal(rate), Decimal(fee), self.now + QUOTE_TTL, "lp-1"),
            cause=self.cause(),
        )


Step = Callable[[Order, Desk, Decimal], None]


def confirm(order: Order, desk: Desk, _: Decimal) -> None:
    order.confirm(order.side, None, desk.cause())


def requote(order: Order, desk: Desk, rate: Decimal) -> None:
    order.requote(QuoteTerms(rate, order.fee, desk.now + QUOTE_TTL, "lp-2"), desk.cause())


def lapse(order: Order, desk: Desk, _: Decimal) -> None:
    desk.wait(QUOTE_TTL.total_seconds())
    order.expire(desk.cause(SWEEPER))


def observe_lapse(order: Order, desk: Desk, _: Decimal) -> None:
    desk.wait(QUOTE_TTL.total_seconds())
    order.observe_time(desk.cause())


def cancel(order: Order, desk: Desk, _: Decimal) -> None:
    order.cancel(desk.cause())


def debit(order: Order, desk: Desk, _: Decimal) -> None:
    order.record_source_debit("debit-1", desk.cause(WORKER))


def debit_fails(order: Order, desk: Desk, _: Decimal) -> None:
    order.record_source_debit_failure("INSUFFICIENT_FUNDS: 12.00 EUR on acc-9", desk.cause(WORKER))


def approve(order: Order, desk: Desk, rate: Decimal) -> None:
    order.approve(at_live(rate, "lp-final"), ANY_RATE, desk.cause(OPERATOR))


def reject(order: Order, desk: Desk, _: Decimal) -> None:
    order.reject("compliance", desk.cause(OPERATOR))


def refund(order: Order, desk: Desk, _: Decimal) -> None:
    order.record_refund(1, "refund-1", desk.cause(WORKER))


def pay_out(order: Order, desk: Desk, _: Decimal) -> None:
    order.record_payout(order.payout_attempt, f"payout-{order.payout_attempt}", desk.cause(WORKER))


def payout_fails(order: Order, desk: Desk, _: Decimal) -> None:
    order.record_payout_failure(
        order.payout_attempt, "INVALID_ADDRESS: address rejected", desk.cause(WORKER)
    )


def refund_fails(order: Order, desk: Desk, _: Decimal) -> None:
    order.record_refund_failure(order.refund_attempt, "ACCOUNT_CLOSED: acc-9", desk.cause(WORKER))


def retry_refund(order: Order, desk: Desk, _: Decimal) -> None:
    order.retry_refund(desk.cause(OPERATOR))


def retry_payout(order: Order, desk: Desk, _: Decimal) -> None:
    order.retry_payout(desk.cause(OPERATOR))


STEPS: list[Step] = [
    confirm,
    requote,
    lapse,
    observe_lapse,
    cancel,
    debit,
    debit_fails,
    approve,
    reject,
    refund,
    refund_fails,
    retry_refund,
    pay_out,
    payout_fails,
    retry_payout,
]
COMPLETED: dict[Side, list[Step]] = {
    Side.BUY: [requote, confirm, debit, approve, payout_fails, retry_payout, pay_out],
    Side.SELL: [requote, confirm, approve, debit, payout_fails, retry_payout, pay_out],
}


def drive(order: Order, desk: Desk, steps: Iterable[Step], rate: str = "1.0790") -> Order:
    """Take each step that the order accepts in its status; refused steps change nothing."""
    for step in steps:
        desk.wait(1)
        try:
            step(order, desk, Decimal(rate))
        except DomainError:
            continue
    return order


def fold(events: Sequence[Order.Event], first_position: int = 1) -> list[OrderListRow]:
    """The row after each event, the events found at consecutive positions."""
    rows: list[OrderListRow] = []
    row: OrderListRow | None = None
    for position, event in enumerate(events, start=first_position):
        row = row_after(row, event, position)
        rows.append(row)
    return rows


def order_events(order: Order) -> list[Order.Event]:
    return [cast("Order.Event", event) for event in order.pending_events]


def views_at_each_version(events: Sequence[Order.Event]) -> list[OrderView]:
    views: list[OrderView] = []
    aggregate: Any = None
    for event in events:
        aggregate = event.mutate(aggregate)
        views.append(OrderView.of(aggregate))
    return views


# ---------------------------------------------------------------- the rows


rates = st.integers(9_000, 11_000).map(lambda units: Decimal(units).scaleb(-4))


@st.composite
def walks(draw: st.DrawFn) -> tuple[Side, list[tuple[Step, Decimal]]]:
    """Part of the side's way to completion, with random detours before each step (any step at
    all, so that some walks end early; refused ones change nothing)."""
    side = draw(st.sampled_from(Side))
    way = COMPLETED[side][: draw(st.integers(0, len(COMPLETED[side])))]
    steps: list[Step] = []
    for forward in way:
        steps.extend(draw(st.lists(st.sampled_from(STEPS), max_size=2)))
        steps.append(forward)
    return side, [(step, draw(rates)) for step in steps]


@given(walk=walks())
def test_row_equals_the_public_view_of_the_order_at_every_version(
    walk: tuple[Side, list[tuple[Step, Decimal]]],
) -> None:
    side, steps = walk
    desk = Desk()
    order = desk.quote(side)
    for step, rate in steps:
        desk.wait(3)
        try:
            step(order, desk, rate)
        except DomainError:
            continue
    events = order_events(order)

    rows = fold(events)

    assert [row.view for row in rows] == views_at_each_version(events)
    assert rows[-1].view == OrderView.of(order)
    assert rows[-1].customer_id == order.customer_id


@pytest.mark.parametrize(
    ("side", "steps", "indicative_amount", "status"),
    [
        (Side.BUY, [confirm, debit, approve], "1078.380000", Status.PAYOUT_PENDING),
        (Side.SELL, [confirm, approve], "269.46", Status.DEBIT_PENDING),
    ],
)
def test_approval_keeps_the_quoted_rate_and_amount_as_indicative(
    side: Side, steps: list[Step], indicative_amount: str, status: Status
) -> None:
    desk = Desk()
    order = drive(desk.quote(side, rate="1.08"), desk, steps, rate="1.0700")
    rows = fold(order_events(order))

    approved = rows[-1].view

    assert approved.status is status
    assert approved.rate == Decimal("1.07")
    assert approved.indicative_rate == Decimal("1.08")
    assert approved.indicative_destination_amount == Decimal(indicative_amount)
    assert approved.destination_amount < approved.indicative_destination_amount
    assert "indicativeRate" in approved.public_json()
    assert "indicativeRate" not in rows[-2].view.public_json()


def test_requote_refreshes_rate_fee_amount_and_expiry() -> None:
    desk = Desk()
    order = drive(desk.quote(Side.BUY, rate="1.08"), desk, [lapse, requote], rate="1.1000")

    quoted, expired, requoted = fold(order_events(order))

    assert (quoted.view.status, expired.view.status, requoted.view.status) == (
        Status.QUOTED,
        Status.EXPIRED,
        Status.REQUOTED,
    )
    assert requoted.view.rate == Decimal("1.1")
    assert requoted.view.destination_amount == Decimal("1098.350000")
    assert requoted.view.expires_at > quoted.view.expires_at
    assert requoted.view.created_at == quoted.view.created_at
    assert requoted.view.updated_at == desk.now


@pytest.mark.parametrize("side", list(Side))
def test_row_carries_the_version_and_position_of_its_last_event(side: Side) -> None:
    desk = Desk()
    order = drive(desk.quote(side), desk, COMPLETED[side])

    row = fold(order_events(order), first_position=41)[-1]

    assert row.view.status is Status.COMPLETED
    assert row.version == order.version == 8
    assert row.position == 48


def test_an_event_the_row_already_reflects_leaves_it_unchanged() -> None:
    desk = Desk()
    events = order_events(drive(desk.quote(Side.SELL), desk, [confirm, approve]))
    rows = fold(events)

    again = [row_after(rows[-1], event, 99) for event in events]

    assert again == [rows[-1]] * len(events)


def test_an_event_after_a_gap_in_the_versions_is_refused() -> None:
    desk = Desk()
    quoted, _, debited = order_events(drive(desk.quote(Side.BUY), desk, [confirm, debit]))

    with pytest.raises(MissingEventsError, match="version 3"):
        row_after(row_after(None, quoted, 1), debited, 3)
    with pytest.raises(MissingEventsError, match="no row"):
        row_after(None, debited, 3)


# ---------------------------------------------------------------- the projection's writes


@dataclass
class FakeView:
    """Records what the projection asks the view to write."""

    rows: dict[UUID, OrderListRow] = field(default_factory=dict)
    writes: list[tuple[list[OrderListRow], Tracking]] = field(default_factory=list)
    tracked_only: list[Tracking] = field(default_factory=list)

    def apply(self, order_ids: Iterable[UUID], fold: Fold, tracking: Tracking) -> bool:
        written = list(fold({i: self.rows[i] for i in order_ids if i in self.rows}).values())
        self.rows.update({row.order_id: row for row in written})
        self.writes.append((written, tracking))
        return True

    def insert_tracking(self, tracking: Tracking) -> None:
        self.tracked_only.append(tracking)


def projection_on(view: FakeView) -> OrderListProjection:
    return OrderListProjection(view=cast("OrderListView", view))


def key_used(desk: Desk) -> IdempotencyKey.Used:
    key = IdempotencyKey.use(
        customer_id=UUID(desk.customer.id),
        key=uuid.uuid4(),
        fingerprint="f",
        command_id=uuid.uuid4(),
        reply={},
        now=desk.now,
    )
    return cast("IdempotencyKey.Used", key.pending_events[0])


def test_events_of_other_aggregates_only_record_tracking() -> None:
    view = FakeView()

    projection_on(view).process_event(key_used(Desk()), Tracking(APP, 7))

    assert view.tracked_only == [Tracking(APP, 7)]
    assert view.writes == []


def test_an_order_event_writes_its_row_with_its_tracking() -> None:
    desk = Desk()
    quoted, confirmed = order_events(drive(desk.quote(Side.BUY), desk, [confirm]))
    view = FakeView()
    projection = projection_on(view)

    projection.process_event(quoted, Tracking(APP, 1))
    projection.process_event(confirmed, Tracking(APP, 2))

    assert [(len(rows), tracking) for rows, tracking in view.writes] == [
        (1, Tracking(APP, 1)),
        (1, Tracking(APP, 2)),
    ]
    assert view.rows[quoted.originator_id].view.status is Status.DEBIT_PENDING
    assert view.tracked_only == []


def test_a_page_is_one_write_of_each_changed_row_tracked_at_its_last_notification() -> None:
    desk = Desk()
    buy = order_events(drive(desk.quote(Side.BUY), desk, [confirm, debit]))
    sell = order_events(drive(desk.quote(Side.SELL), desk, [confirm]))
    mixed: list[object] = [buy[0], sell[0], key_used(desk), buy[1], sell[1], buy[2]]
    page = [(event, Tracking(APP, n)) for n, event in enumerate(mixed, start=10)]
    view = FakeView()

    projection_on(view).process_page(page)

    [(rows, tracking)] = view.writes
    assert tracking == Tracking(APP, 15)
    assert {row.order_id: (row.view.status, row.position) for row in rows} == {
        buy[0].originator_id: (Status.PENDING_APPROVAL, 15),
        sell[0].originator_id: (Status.PENDING_APPROVAL, 14),
    }


def test_the_projector_counts_what_it_applies_and_times_each_page() -> None:
    desk = Desk()
    buy = order_events(drive(desk.quote(Side.BUY), desk, [confirm, debit]))
    page = [(event, Tracking(APP, n)) for n, event in enumerate([*buy, key_used(desk)], start=1)]
    confirmed = value_of(metrics.PROJECTED_EVENTS, type="Confirmed")
    pages = value_of(metrics.PROJECTOR_APPLY, "otc_projector_apply_duration_seconds_count")

    MeasuredOrderListProjection(view=cast("OrderListView", FakeView())).process_page(page)

    assert value_of(metrics.PROJECTED_EVENTS, type="Confirmed") == confirmed + 1
    assert value_of(metrics.PROJECTED_EVENTS, type="IdempotencyKey.Used") == 0
    assert (
        value_of(metrics.PROJECTOR_APPLY, "otc_projector_apply_duration_seconds_count") == pages + 1
    )


def test_the_measured_projection_is_the_same_projection_by_name() -> None:
    # The name picks the view's environment and tables (eventsourcing's Projection).
    assert MeasuredOrderListProjection.name == OrderListProjection.name == "order_list"
