from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.errors import DomainError, ErrorCode
from domain.money import Currency
from domain.order import (
    Actor,
    ActorKind,
    ApprovalControls,
    ApprovalRequest,
    Cause,
    Leg,
    Order,
    Side,
    Status,
)
from domain.views import OrderView
from tests.unit.strategies import (
    ANY_RATE,
    CUSTOMER,
    CUSTOMER_ID,
    LIMITS,
    OPERATOR,
    QUOTE_TTL,
    SECOND_OPERATOR,
    SWEEPER,
    T0,
    WORKER,
    at_live,
    is_exact_to_currency,
    new_order,
    terms,
)


class Desk:
    """Issues the causes of commands: fresh command ids, at a time the test moves on."""

    def __init__(self) -> None:
        self.now = T0
        self.issued = 100

    def cause(self, actor: Actor = CUSTOMER) -> Cause:
        self.issued += 1
        return Cause(actor, UUID(int=self.issued), self.now)

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def desk() -> Desk:
    return Desk()


def quoted(side: Side) -> Order:
    if side is Side.BUY:
        return new_order(Side.BUY, "1000.00", "1.08", "1.50")
    return new_order(Side.SELL, "250.000000", "0.92", "0.500000")


def refused(decide: Callable[[], None], code: ErrorCode) -> DomainError:
    with pytest.raises(DomainError) as refusal:
        decide()
    assert refusal.value.code is code, refusal.value
    return refusal.value


def state_of(order: Order) -> dict[str, object]:
    return dict(vars(order), _pending_events=list(order.pending_events))


# ---------------------------------------------------------------- driving an order to a status

Step = Callable[[Order, Desk], None]


def confirm(order: Order, desk: Desk) -> None:
    order.confirm(order.side, None, desk.cause())


def requote(order: Order, desk: Desk) -> None:
    order.requote(terms("1.09", order.fee, desk.now + QUOTE_TTL), desk.cause())


def lapse(order: Order, desk: Desk) -> None:
    desk.wait(QUOTE_TTL.total_seconds())
    order.expire(desk.cause(SWEEPER))


def cancel(order: Order, desk: Desk) -> None:
    order.cancel(desk.cause())


def debit(order: Order, desk: Desk) -> None:
    order.record_source_debit("debit-1", desk.cause(WORKER))


def debit_fails(order: Order, desk: Desk) -> None:
    order.record_source_debit_failure("insufficient funds", desk.cause(WORKER))


def approve(order: Order, desk: Desk) -> None:
    order.approve(at_live(order.rate, "lp-final"), ANY_RATE, desk.cause(OPERATOR))


def reject(order: Order, desk: Desk) -> None:
    order.reject("compliance", desk.cause(OPERATOR))


def refund(order: Order, desk: Desk) -> None:
    order.record_refund(1, "refund-1", desk.cause(WORKER))


def pay_out(order: Order, desk: Desk) -> None:
    order.record_payout(order.payout_attempt, "payout-1", desk.cause(WORKER))


def payout_fails(order: Order, desk: Desk) -> None:
    order.record_payout_failure(order.payout_attempt, "address rejected", desk.cause(WORKER))


PATHS: dict[Side, dict[Status, list[Step]]] = {
    Side.BUY: {
        Status.QUOTED: [],
        Status.REQUOTED: [requote],
        Status.EXPIRED: [lapse],
        Status.CANCELLED: [cancel],
        Status.DEBIT_PENDING: [confirm],
        Status.PENDING_APPROVAL: [confirm, debit],
        Status.PAYOUT_PENDING: [confirm, debit, approve],
        Status.COMPLETED: [confirm, debit, approve, pay_out],
        Status.REFUND_PENDING: [confirm, debit, reject],
        Status.REJECTED: [confirm, debit, reject, refund],
        Status.FAILED: [confirm, debit_fails],
        Status.PAYOUT_FAILED: [confirm, debit, approve, payout_fails],
    },
    Side.SELL: {
        Status.QUOTED: [],
        Status.REQUOTED: [requote],
        Status.EXPIRED: [lapse],
        Status.CANCELLED: [cancel],
        Status.PENDING_APPROVAL: [confirm],
        Status.DEBIT_PENDING: [confirm, approve],
        Status.PAYOUT_PENDING: [confirm, approve, debit],
        Status.COMPLETED: [confirm, approve, debit, pay_out],
        Status.REJECTED: [confirm, reject],
        Status.FAILED: [confirm, approve, debit_fails],
        Status.PAYOUT_FAILED: [confirm, approve, debit, payout_fails],
    },
}
ALL_REACHABLE = [(side, status) for side, paths in PATHS.items() for status in paths]


def order_in(side: Side, status: Status, desk: Desk) -> Order:
    order = quoted(side)
    for step in PATHS[side][status]:
        step(order, desk)
    assert order.status is status
    return order


def events_of(order: Order) -> list[Order.Event]:
    events = [event for event in order.pending_events if isinstance(event, Order.Event)]
    assert len(events) == len(order.pending_events)
    return events


def event_names(order: Order) -> list[str]:
    return [type(event).__name__ for event in events_of(order)]


# ---------------------------------------------------------------- happy paths


def test_buy_goes_through_every_status_to_completed(desk: Desk) -> None:
    order = quoted(Side.BUY)
    seen = [order.status]
    for step in (confirm, debit, approve, pay_out):
        step(order, desk)
        seen.append(order.status)

    assert seen == [
        Status.QUOTED,
        Status.DEBIT_PENDING,
        Status.PENDING_APPROVAL,
        Status.PAYOUT_PENDING,
        Status.COMPLETED,
    ]
    assert event_names(order) == ["Quoted", "Confirmed", "SourceDebited", "Approved", "PaidOut"]
    assert order.is_final


def test_sell_goes_through_every_status_to_completed(desk: Desk) -> None:
    order = quoted(Side.SELL)
    seen = [order.status]
    for step in (confirm, approve, debit, pay_out):
        step(order, desk)
        seen.append(order.status)

    assert seen == [
        Status.QUOTED,
        Status.PENDING_APPROVAL,
        Status.DEBIT_PENDING,
        Status.PAYOUT_PENDING,
        Status.COMPLETED,
    ]
    assert event_names(order) == ["Quoted", "Confirmed", "Approved", "SourceDebited", "PaidOut"]


def test_buy_quote_converts_source_less_fee_rounded_down_to_usdc_places() -> None:
    order = new_order(Side.BUY, "1000", "1.0812345678", "1.50")

    assert (order.source_currency, order.destination_currency) == (Currency.EUR, Currency.USDC)
    assert str(order.source_amount) == "1000.00"
    assert str(order.destination_amount) == "1079.612715"


def test_sell_quote_converts_source_less_fee_rounded_down_to_eur_places() -> None:
    order = new_order(Side.SELL, "250.5", "0.9234567891", "0.500000")

    assert (order.source_currency, order.destination_currency) == (Currency.USDC, Currency.EUR)
    assert str(order.source_amount) == "250.500000"
    assert str(order.destination_amount) == "230.86"


def test_quote_rounds_a_rate_of_more_than_ten_places_down() -> None:
    order = new_order(Side.BUY, "100.00", "1.08123456789999", "0.00")

    assert order.rate == Decimal("1.0812345678")


# ---------------------------------------------------------------- rejection and failure


def test_rejected_buy_awaits_the_eur_refund_then_is_rejected(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PENDING_APPROVAL, desk)

    reject(order, desk)
    seen = [order.status]
    refund(order, desk)
    seen.append(order.status)

    assert seen == [Status.REFUND_PENDING, Status.REJECTED]
    assert order.failure_reason == "compliance"
    assert order.refund_reference == "refund-1"


def test_rejected_sell_is_rejected_at_once_as_nothing_moved(desk: Desk) -> None:
    order = order_in(Side.SELL, Status.PENDING_APPROVAL, desk)

    reject(order, desk)

    assert order.status is Status.REJECTED
    assert event_names(order)[-1] == "Rejected"


def test_refund_is_refused_for_a_rejected_sell(desk: Desk) -> None:
    order = order_in(Side.SELL, Status.REJECTED, desk)

    refused(lambda: refund(order, desk), ErrorCode.INVALID_TRANSITION)


@pytest.mark.parametrize("side", list(Side))
def test_failed_source_debit_fails_the_order_for_good(side: Side, desk: Desk) -> None:
    order = order_in(side, Status.FAILED, desk)

    assert order.failure_reason == "insufficient funds"
    assert order.is_final
    refused(lambda: debit(order, desk), ErrorCode.INVALID_TRANSITION)
    refused(lambda: approve(order, desk), ErrorCode.INVALID_TRANSITION)


def test_reject_is_refused_before_confirmation(desk: Desk) -> None:
    order = quoted(Side.SELL)

    refused(lambda: reject(order, desk), ErrorCode.INVALID_TRANSITION)


def test_approve_of_a_buy_is_refused_until_the_eur_is_in_treasury(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.DEBIT_PENDING, desk)

    refused(lambda: approve(order, desk), ErrorCode.INVALID_TRANSITION)


# ---------------------------------------------------------------- expiry and requote


def test_observing_time_expires_a_quote_from_the_moment_it_lapses(desk: Desk) -> None:
    order = quoted(Side.BUY)
    desk.now = order.expires_at - timedelta(microseconds=1)
    order.observe_time(desk.cause())
    seen = [order.status]

    desk.now = order.expires_at
    noticing = desk.cause()
    order.observe_time(noticing)
    seen.append(order.status)

    assert seen == [Status.QUOTED, Status.EXPIRED]
    assert event_names(order) == ["Quoted", "Expired"]
    assert order.version_after(noticing.command_id) is None


def test_lapsed_quote_refuses_confirm_with_quote_expired(desk: Desk) -> None:
    order = quoted(Side.BUY)
    desk.wait(QUOTE_TTL.total_seconds())
    before = state_of(order)

    error = refused(lambda: confirm(order, desk), ErrorCode.QUOTE_EXPIRED)

    assert error.status == 400
    assert state_of(order) == before


def test_expired_quote_refuses_confirm_with_quote_expired(desk: Desk) -> None:
    order = order_in(Side.SELL, Status.EXPIRED, desk)

    refused(lambda: confirm(order, desk), ErrorCode.QUOTE_EXPIRED)


def test_sweeper_expires_only_a_lapsed_open_quote(desk: Desk) -> None:
    order = quoted(Side.BUY)
    refused(lambda: order.expire(desk.cause(SWEEPER)), ErrorCode.INVALID_TRANSITION)

    desk.wait(QUOTE_TTL.total_seconds())
    order.expire(desk.cause(SWEEPER))
    order.expire(desk.cause(SWEEPER))

    assert order.status is Status.EXPIRED
    assert event_names(order) == ["Quoted", "Expired"]


def test_sweeper_cannot_expire_a_confirmed_order(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.DEBIT_PENDING, desk)
    desk.wait(3600)

    refused(lambda: order.expire(desk.cause(SWEEPER)), ErrorCode.INVALID_TRANSITION)


def test_requote_from_expired_reopens_the_quote_with_new_terms(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.EXPIRED, desk)

    order.requote(terms("1.0950000000", "2.00", desk.now + QUOTE_TTL, "lp-2"), desk.cause())

    assert order.status is Status.REQUOTED
    assert order.rate == Decimal("1.0950000000")
    assert order.fee == Decimal("2.00")
    assert order.destination_amount == Decimal("1092.810000")
    assert order.expires_at == desk.now + QUOTE_TTL
    assert order.provider_quote_id == "lp-2"


def test_requoted_order_may_be_confirmed(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.EXPIRED, desk)
    requote(order, desk)

    confirm(order, desk)

    assert order.status is Status.DEBIT_PENDING


def test_requote_is_refused_once_confirmed(desk: Desk) -> None:
    order = order_in(Side.SELL, Status.PENDING_APPROVAL, desk)

    refused(lambda: requote(order, desk), ErrorCode.INVALID_TRANSITION)


@pytest.mark.parametrize("fee", ["-0.01", "1000.00", "1000.01", "0.001"])
def test_quote_with_a_fee_out_of_range_is_unavailable(fee: str, desk: Desk) -> None:
    order = quoted(Side.BUY)

    refused(
        lambda: order.requote(terms("1.08", fee, desk.now + QUOTE_TTL), desk.cause()),
        ErrorCode.QUOTE_UNAVAILABLE,
    )
    with pytest.raises(DomainError, match="fee"):
        new_order(Side.BUY, "1000.00", "1.08", fee)


@pytest.mark.parametrize(("fee", "expected"), [("1.500", "1.50"), ("1.5", "1.50"), ("0", "0.00")])
def test_quote_keeps_the_fee_at_exactly_the_source_currency_places(
    fee: str, expected: str, desk: Desk
) -> None:
    order = new_order(Side.BUY, "1000.00", "1.08", "1.00")
    order.requote(terms("1.08", fee, desk.now + QUOTE_TTL), desk.cause())

    assert str(order.fee) == expected
    assert is_exact_to_currency(order.fee, Currency.EUR)


# ---------------------------------------------------------------- cancel


@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("status", [Status.QUOTED, Status.REQUOTED])
def test_customer_may_cancel_an_open_quote(side: Side, status: Status, desk: Desk) -> None:
    order = order_in(side, status, desk)

    cancel(order, desk)

    assert order.status is Status.CANCELLED
    assert order.is_final


@pytest.mark.parametrize(
    ("side", "status"),
    [
        (side, status)
        for side, status in ALL_REACHABLE
        if status not in {Status.QUOTED, Status.REQUOTED}
    ],
)
def test_cancel_is_refused_with_not_cancellable_outside_an_open_quote(
    side: Side, status: Status, desk: Desk
) -> None:
    order = order_in(side, status, desk)
    before = state_of(order)

    error = refused(lambda: cancel(order, desk), ErrorCode.NOT_CANCELLABLE)

    assert error.status == 409
    assert state_of(order) == before


# ---------------------------------------------------------------- confirm


@pytest.mark.parametrize("side", list(Side))
def test_confirm_naming_the_other_side_is_side_mismatch(side: Side, desk: Desk) -> None:
    order = quoted(side)
    other = Side.SELL if side is Side.BUY else Side.BUY

    error = refused(lambda: order.confirm(other, None, desk.cause()), ErrorCode.SIDE_MISMATCH)

    assert (error.status, error.field) == (422, "side")
    assert order.status is Status.QUOTED


def test_confirm_is_refused_when_already_confirmed(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.DEBIT_PENDING, desk)

    refused(lambda: confirm(order, desk), ErrorCode.INVALID_TRANSITION)


def test_confirm_refuses_a_negative_slippage_limit(desk: Desk) -> None:
    order = quoted(Side.BUY)

    error = refused(lambda: order.confirm(Side.BUY, -1, desk.cause()), ErrorCode.VALIDATION_ERROR)

    assert error.field == "maxSlippageBps"


# ---------------------------------------------------------------- approval and slippage


def confirmed_sell_with_limit(desk: Desk, max_slippage_bps: int | None) -> Order:
    order = new_order(Side.SELL, "1000.000000", "0.9200000000", "0.000000")
    order.confirm(Side.SELL, max_slippage_bps, desk.cause())
    return order


def test_approval_sets_the_final_rate_and_keeps_the_indicative_quote(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, None)

    order.approve(at_live(Decimal("0.9100000000"), "lp-final"), ANY_RATE, desk.cause(OPERATOR))

    assert order.rate == Decimal("0.9100000000")
    assert order.destination_amount == Decimal("910.00")
    assert order.indicative_rate == Decimal("0.9200000000")
    assert order.indicative_destination_amount == Decimal("920.00")
    approved = order.pending_events[-1]
    assert isinstance(approved, Order.Approved)
    assert approved.provider_quote_id == "lp-final"


def test_approval_beyond_the_slippage_limit_is_refused_with_slippage_exceeded(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, 50)
    before = state_of(order)

    error = refused(
        lambda: order.approve(
            at_live(Decimal("0.9153999999"), None), ANY_RATE, desk.cause(OPERATOR)
        ),
        ErrorCode.SLIPPAGE_EXCEEDED,
    )

    assert error.status == 409
    assert state_of(order) == before


def test_approval_at_exactly_the_slippage_limit_is_accepted(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, 50)

    order.approve(at_live(Decimal("0.9154"), None), ANY_RATE, desk.cause(OPERATOR))

    assert order.status is Status.DEBIT_PENDING
    assert order.destination_amount == Decimal("915.40")


def test_approval_at_a_better_rate_is_accepted_whatever_the_limit(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, 0)

    order.approve(at_live(Decimal("0.93"), None), ANY_RATE, desk.cause(OPERATOR))

    assert order.destination_amount == Decimal("930.00")


def test_approval_without_a_slippage_limit_accepts_any_worse_rate(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, None)

    order.approve(at_live(Decimal("0.5"), None), ANY_RATE, desk.cause(OPERATOR))

    assert order.destination_amount == Decimal("500.00")


def test_approval_rounds_a_final_rate_of_more_than_ten_places_down(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, None)

    order.approve(at_live(Decimal("0.91000000009"), None), ANY_RATE, desk.cause(OPERATOR))

    assert order.rate == Decimal("0.9100000000")


def overriding(rate: str) -> ApprovalRequest:
    """An operator's explicit rate with an override: only the rate's own checks apply."""
    return ApprovalRequest(
        rate=Decimal(rate),
        live_rate=Decimal("0.92"),
        provider_quote_id=None,
        override=True,
        reason="test",
    )


def test_approval_at_a_rate_that_leaves_nothing_to_pay_is_refused(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, None)

    refused(
        lambda: order.approve(overriding("0.000001"), ANY_RATE, desk.cause(OPERATOR)),
        ErrorCode.VALIDATION_ERROR,
    )
    assert order.status is Status.PENDING_APPROVAL


def test_approval_at_an_implausibly_large_rate_is_refused(desk: Desk) -> None:
    order = confirmed_sell_with_limit(desk, None)

    refused(
        lambda: order.approve(overriding("1E+20"), ANY_RATE, desk.cause(OPERATOR)),
        ErrorCode.VALIDATION_ERROR,
    )


# ---------------------------------------------------------------- payout


@pytest.mark.parametrize("side", list(Side))
def test_payout_failure_then_retry_then_payout_completes(side: Side, desk: Desk) -> None:
    order = order_in(side, Status.PAYOUT_FAILED, desk)
    failed: tuple[Status, int, str | None] = (
        order.status,
        order.payout_attempt,
        order.failure_reason,
    )

    order.retry_payout(desk.cause(OPERATOR))
    retried = (order.status, order.payout_attempt, order.failure_reason)
    order.record_payout(2, "payout-2", desk.cause(WORKER))

    assert failed == (Status.PAYOUT_FAILED, 1, "address rejected")
    assert retried == (Status.PAYOUT_PENDING, 2, None)
    assert order.status is Status.COMPLETED
    assert order.payout_reference == "payout-2"
    assert event_names(order)[-3:] == ["PayoutFailed", "PayoutRetried", "PaidOut"]


def test_payout_of_a_superseded_attempt_is_refused(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PAYOUT_FAILED, desk)
    order.retry_payout(desk.cause(OPERATOR))

    refused(
        lambda: order.record_payout(1, "payout-1", desk.cause(WORKER)),
        ErrorCode.INVALID_TRANSITION,
    )
    refused(
        lambda: order.record_payout(3, "payout-3", desk.cause(WORKER)),
        ErrorCode.INVALID_TRANSITION,
    )


def test_retry_is_refused_unless_the_payout_failed(desk: Desk) -> None:
    order = order_in(Side.SELL, Status.PAYOUT_PENDING, desk)

    refused(lambda: order.retry_payout(desk.cause(OPERATOR)), ErrorCode.INVALID_TRANSITION)


def test_repeated_failure_of_the_current_attempt_is_a_no_op(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PAYOUT_FAILED, desk)
    before = state_of(order)

    order.record_payout_failure(1, "address rejected again", desk.cause(WORKER))

    assert state_of(order) == before


def test_repeated_failure_of_an_earlier_attempt_after_a_retry_is_a_no_op(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PAYOUT_FAILED, desk)
    order.retry_payout(desk.cause(OPERATOR))
    before = state_of(order)

    order.record_payout_failure(1, "address rejected", desk.cause(WORKER))

    assert state_of(order) == before


# ---------------------------------------------------------------- duplicate outcomes

Report = Callable[[Order, Desk, str], None]


def report_debit(order: Order, desk: Desk, reference: str) -> None:
    order.record_source_debit(reference, desk.cause(WORKER))


def report_refund(order: Order, desk: Desk, reference: str) -> None:
    order.record_refund(1, reference, desk.cause(WORKER))


def report_payout(order: Order, desk: Desk, reference: str) -> None:
    order.record_payout(1, reference, desk.cause(WORKER))


# (side, status the outcome led to or went beyond, report, the reference the path recorded)
OUTCOMES: list[tuple[Side, Status, Report, str]] = [
    (Side.BUY, Status.PENDING_APPROVAL, report_debit, "debit-1"),
    (Side.SELL, Status.COMPLETED, report_debit, "debit-1"),
    (Side.BUY, Status.REJECTED, report_refund, "refund-1"),
    (Side.BUY, Status.COMPLETED, report_payout, "payout-1"),
    (Side.SELL, Status.COMPLETED, report_payout, "payout-1"),
]


@pytest.mark.parametrize(("side", "status", "report", "reference"), OUTCOMES)
def test_duplicate_outcome_with_the_same_reference_is_a_no_op(
    side: Side, status: Status, report: Report, reference: str, desk: Desk
) -> None:
    order = order_in(side, status, desk)
    before = state_of(order)

    report(order, desk, reference)

    assert state_of(order) == before


@pytest.mark.parametrize(("side", "status", "report", "reference"), OUTCOMES)
def test_duplicate_outcome_with_another_reference_is_an_invalid_transition(
    side: Side, status: Status, report: Report, reference: str, desk: Desk
) -> None:
    order = order_in(side, status, desk)
    before = state_of(order)

    refused(lambda: report(order, desk, f"not-{reference}"), ErrorCode.INVALID_TRANSITION)

    assert state_of(order) == before


def test_repeated_debit_failure_is_a_no_op(desk: Desk) -> None:
    order = order_in(Side.SELL, Status.FAILED, desk)
    before = state_of(order)

    debit_fails(order, desk)

    assert state_of(order) == before


def test_debit_failure_after_a_recorded_debit_is_refused(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PENDING_APPROVAL, desk)

    refused(lambda: debit_fails(order, desk), ErrorCode.INVALID_TRANSITION)


# ---------------------------------------------------------------- ownership


def test_another_customers_order_is_not_found() -> None:
    order = quoted(Side.BUY)
    stranger = Actor(ActorKind.CUSTOMER, str(UUID(int=99)))

    error = refused(lambda: order.check_owner(stranger), ErrorCode.ORDER_NOT_FOUND)

    assert error.status == 404
    assert error.message == "order not found"


@pytest.mark.parametrize("actor", [CUSTOMER, OPERATOR, WORKER])
def test_owner_operators_and_workers_may_act_on_an_order(actor: Actor) -> None:
    order = quoted(Side.SELL)

    order.check_owner(actor)

    assert order.customer_id == CUSTOMER_ID


# ---------------------------------------------------------------- amounts at quote time


@pytest.mark.parametrize(
    ("side", "amount", "code"),
    [
        (Side.BUY, "100.001", ErrorCode.VALIDATION_ERROR),
        (Side.SELL, "100.0000001", ErrorCode.VALIDATION_ERROR),
        (Side.BUY, "0", ErrorCode.VALIDATION_ERROR),
        (Side.SELL, "-10.000000", ErrorCode.VALIDATION_ERROR),
        (Side.BUY, "9.99", ErrorCode.AMOUNT_BELOW_MINIMUM),
        (Side.SELL, "9.999999", ErrorCode.AMOUNT_BELOW_MINIMUM),
        (Side.BUY, "1000000.01", ErrorCode.AMOUNT_ABOVE_MAXIMUM),
        (Side.SELL, "1000000.000001", ErrorCode.AMOUNT_ABOVE_MAXIMUM),
    ],
)
def test_quote_refuses_amounts_of_the_wrong_shape_or_size(
    side: Side, amount: str, code: ErrorCode
) -> None:
    with pytest.raises(DomainError) as refusal:
        new_order(side, amount, "1.00", "0")

    assert refusal.value.code is code
    assert refusal.value.field == "sourceAmount"


@pytest.mark.parametrize(("side", "amount"), [(Side.BUY, "10.00"), (Side.SELL, "1000000")])
def test_quote_accepts_amounts_at_the_size_limits(side: Side, amount: str) -> None:
    order = new_order(side, amount, "1.00", "0")

    assert order.source_amount == Decimal(amount)
    assert LIMITS.minimum[order.source_currency] <= order.source_amount


def test_quote_too_small_to_convert_is_below_minimum() -> None:
    with pytest.raises(DomainError) as refusal:
        new_order(Side.BUY, "10.00", "0.0000000001", "0.00")

    assert refusal.value.code is ErrorCode.AMOUNT_BELOW_MINIMUM


# ---------------------------------------------------------------- events, redelivery, audit


def test_every_event_carries_actor_command_customer_and_side(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.COMPLETED, desk)

    events = events_of(order)

    assert [(event.actor_kind, event.actor_id) for event in events] == [
        ("customer", str(CUSTOMER_ID)),
        ("customer", str(CUSTOMER_ID)),
        ("system", "worker"),
        ("operator", "operator-7"),
        ("system", "worker"),
    ]
    assert [event.command_id for event in events] == [UUID(int=n) for n in (4, 101, 102, 103, 104)]
    assert {(event.customer_id, event.side) for event in events} == {(CUSTOMER_ID, "buy")}


def test_order_remembers_the_version_each_command_reached(desk: Desk) -> None:
    order = quoted(Side.SELL)
    confirming = desk.cause()
    order.confirm(Side.SELL, 25, confirming)
    approving = desk.cause(OPERATOR)
    order.approve(at_live(Decimal("0.92"), None), ANY_RATE, approving)

    assert order.version_after(UUID(int=4)) == 1
    assert order.version_after(confirming.command_id) == 2
    assert order.version_after(approving.command_id) == 3
    assert order.version_after(UUID(int=12345)) is None


def test_events_are_stamped_with_the_time_passed_in(desk: Desk) -> None:
    order = quoted(Side.BUY)
    desk.wait(12.5)
    confirm(order, desk)

    assert order.created_on == T0
    assert order.modified_on == T0 + timedelta(seconds=12.5)


def test_reloaded_order_equals_the_one_saved_and_earlier_versions_replay(desk: Desk) -> None:
    order = quoted(Side.BUY)
    statuses = [order.status]
    for step in (confirm, debit, approve, payout_fails):
        step(order, desk)
        statuses.append(order.status)
    app = Application[UUID](env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    app.save(order)

    assert app.repository.get(order.id) == order
    replayed: list[Status] = [
        app.repository.get(order.id, version=v).status for v in range(1, order.version + 1)
    ]
    assert replayed == statuses


# ---------------------------------------------------------------- the public view


def test_view_before_approval_has_no_indicative_fields(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PENDING_APPROVAL, desk)

    body = OrderView.of(order).public_json()

    assert body["id"] == body["quoteId"] == str(order.id)
    assert (body["sourceAmount"], body["destinationAmount"], body["fee"]) == (
        "1000.00",
        "1078.380000",
        "1.50",
    )
    assert "indicativeRate" not in body
    assert "indicativeDestinationAmount" not in body


def test_view_after_approval_shows_final_rate_and_indicative_quote(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.PENDING_APPROVAL, desk)
    order.approve(at_live(Decimal("1.07"), "lp-final"), ANY_RATE, desk.cause(OPERATOR))

    body = OrderView.of(order).public_json()

    assert (body["rate"], body["destinationAmount"]) == ("1.07", "1068.395000")
    assert (body["indicativeRate"], body["indicativeDestinationAmount"]) == ("1.08", "1078.380000")
    assert body["status"] == "payout_pending"
    assert "lp-final" not in str(body)


# ---------------------------------------------------------------- approval controls


CONTROLS = ApprovalControls(collar_bps=200, dual_control_eur=Decimal("100000.00"))


def pending_buy(desk: Desk, amount: str = "1000.00") -> Order:
    order = new_order(Side.BUY, amount, "1.08", "0")
    order.confirm(Side.BUY, None, desk.cause())
    order.record_source_debit("debit-1", desk.cause(WORKER))
    return order


def operator_rate(rate: str, live: str = "1.08", **override: object) -> ApprovalRequest:
    return ApprovalRequest(
        rate=Decimal(rate),
        live_rate=Decimal(live),
        provider_quote_id="lp-live",
        override=bool(override.get("override", False)),
        reason=override.get("reason"),  # type: ignore[arg-type]
    )


def test_a_rate_outside_the_collar_is_refused_with_the_live_rate_and_the_range(desk: Desk) -> None:
    order = pending_buy(desk)
    before = state_of(order)

    error = refused(
        lambda: order.approve(operator_rate("10.75"), CONTROLS, desk.cause(OPERATOR)),
        ErrorCode.RATE_OUTSIDE_COLLAR,
    )

    assert error.status == 422
    assert "live rate 1.08: allowed 1.0584 to 1.1016" in error.message
    assert state_of(order) == before


def test_the_collar_includes_both_of_its_ends(desk: Desk) -> None:
    for rate in ("1.0584", "1.1016"):
        order = pending_buy(desk)
        order.approve(operator_rate(rate), CONTROLS, desk.cause(OPERATOR))
        assert order.rate == Decimal(rate)
    order = pending_buy(desk)
    refused(
        lambda: order.approve(operator_rate("1.0583999999"), CONTROLS, desk.cause(OPERATOR)),
        ErrorCode.RATE_OUTSIDE_COLLAR,
    )


def test_an_override_with_a_reason_approves_outside_the_collar_and_is_recorded(
    desk: Desk,
) -> None:
    order = pending_buy(desk)

    order.approve(
        operator_rate("1.20", override=True, reason="desk call with the LP"),
        CONTROLS,
        desk.cause(OPERATOR),
    )

    approved = order.pending_events[-1]
    assert isinstance(approved, Order.Approved)
    assert (approved.override, approved.override_reason) == (True, "desk call with the LP")
    assert approved.live_rate == Decimal("1.08")
    assert (approved.actor_id, approved.actor_name) == (OPERATOR.id, OPERATOR.name)
    assert approved.provider_quote_id is None  # an operator's own rate is no provider quote


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_an_override_without_a_reason_is_refused(desk: Desk, reason: str | None) -> None:
    order = pending_buy(desk)

    error = refused(
        lambda: order.approve(
            operator_rate("1.20", override=True, reason=reason), CONTROLS, desk.cause(OPERATOR)
        ),
        ErrorCode.VALIDATION_ERROR,
    )

    assert error.field == "reason"


def test_an_order_under_dual_control_needs_a_second_different_operator(desk: Desk) -> None:
    order = pending_buy(desk, "100000.00")

    order.approve(at_live("1.08"), CONTROLS, desk.cause(OPERATOR))
    assert order.status is Status.PENDING_APPROVAL
    assert isinstance(order.pending_events[-1], Order.ApprovalRecorded)
    refused(
        lambda: order.approve(at_live("1.08"), CONTROLS, desk.cause(OPERATOR)),
        ErrorCode.SAME_APPROVER,
    )
    order.approve(at_live("1.081"), CONTROLS, desk.cause(SECOND_OPERATOR))

    assert (order.status, order.rate) == (Status.PAYOUT_PENDING, Decimal("1.081"))


def test_an_order_just_below_the_dual_control_threshold_needs_one_operator(desk: Desk) -> None:
    order = pending_buy(desk, "99999.99")

    order.approve(at_live("1.08"), CONTROLS, desk.cause(OPERATOR))

    assert order.status is Status.PAYOUT_PENDING


def test_a_sell_is_under_dual_control_by_its_indicative_eur_value(desk: Desk) -> None:
    order = new_order(Side.SELL, "110000.000000", "0.92", "0")
    order.confirm(Side.SELL, None, desk.cause())

    order.approve(at_live("0.92"), CONTROLS, desk.cause(OPERATOR))

    assert order.status is Status.PENDING_APPROVAL  # 101,200.00 EUR indicative


def test_either_operator_may_reject_after_a_first_approval(desk: Desk) -> None:
    order = pending_buy(desk, "150000.00")
    order.approve(at_live("1.08"), CONTROLS, desk.cause(OPERATOR))

    order.reject("AML", desk.cause(SECOND_OPERATOR))

    assert order.status is Status.REFUND_PENDING


# ---------------------------------------------------------------- refunds and flagged movements


def test_a_refused_refund_fails_and_a_retry_refunds_under_a_new_attempt(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.REFUND_PENDING, desk)

    order.record_refund_failure(1, "ACCOUNT_CLOSED", desk.cause(WORKER))
    assert order.status == Status.REFUND_FAILED
    order.record_refund_failure(1, "ACCOUNT_CLOSED", desk.cause(WORKER))  # a repeat: no-op
    order.retry_refund(desk.cause(OPERATOR))
    assert (order.status, order.refund_attempt) == (Status.REFUND_PENDING, 2)
    refused(
        lambda: order.record_refund(1, "late", desk.cause(WORKER)), ErrorCode.INVALID_TRANSITION
    )
    order.record_refund(2, "refund-2", desk.cause(WORKER))

    assert (order.status, order.refund_reference) == (Status.REJECTED, "refund-2")


def test_an_unresolved_movement_flags_the_order_without_changing_its_status(desk: Desk) -> None:
    order = order_in(Side.BUY, Status.DEBIT_PENDING, desk)

    order.record_movement_unresolved(Leg.DEBIT, 1, "timeout", desk.cause(WORKER))
    order.record_movement_unresolved(Leg.DEBIT, 1, "timeout", desk.cause(WORKER))

    assert order.status is Status.DEBIT_PENDING
    assert order.unresolved == (Leg.DEBIT, 1)
    assert sum(isinstance(e, Order.MovementUnresolved) for e in order.pending_events) == 1
    refused(
        lambda: order.record_movement_unresolved(Leg.PAYOUT, 1, "x", desk.cause(WORKER)),
        ErrorCode.INVALID_TRANSITION,
    )
    debit(order, desk)
    assert order.unresolved is None
