"""The reconciliation's rules, on histories and statements built by hand: what a history implies
of the ledgers, and every way a statement can differ from it."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from domain.movements import (
    Direction,
    Expected,
    Movement,
    Party,
    expected_movements,
    parse_reference,
    rechecked,
    reconcile,
    reference,
)
from domain.order import Actor, ActorKind, Cause, Leg, Order, Side
from tests.unit.strategies import ANY_RATE, CUSTOMER, OPERATOR, T0, at_live, new_order

EUR = Actor(ActorKind.SYSTEM, "eur-treasury")
USDC = Actor(ActorKind.SYSTEM, "usdc-chain")


def cause(actor: Actor = CUSTOMER) -> Cause:
    return Cause(actor, uuid4(), T0)


def completed_buy() -> Order:
    order = new_order(Side.BUY, "100.00", "1.08", "0", order_id=uuid4())
    order.confirm(Side.BUY, None, cause())
    order.record_source_debit("BNK1", cause(EUR))
    order.approve(at_live("1.08"), ANY_RATE, cause(OPERATOR))
    order.record_payout(1, "0xhash", cause(USDC))
    return order


def history(order: Order) -> list[Order.Event]:
    return [e for e in order.pending_events if isinstance(e, Order.Event)]


def ledgers_of(order: Order) -> dict[str, Movement]:
    """What a well-behaved bank and chain hold for a completed buy."""
    return {
        reference(order.id, Leg.DEBIT, 1): Movement(
            Party.EUR_TREASURY, Decimal("100.00"), Direction.TO_TREASURY, order.source_id
        ),
        reference(order.id, Leg.PAYOUT, 1): Movement(
            Party.USDC_CHAIN, Decimal("108.000000"), Direction.FROM_TREASURY, order.destination_id
        ),
    }


def check(order: Order, booked: dict[str, Movement]) -> list[str]:
    expected: list[Expected] = expected_movements(order, history(order))
    return [m.problem for m in reconcile(expected, booked, {order.id})]


def test_a_completed_buy_implies_one_debit_and_one_payout() -> None:
    order = completed_buy()

    expected = expected_movements(order, history(order))

    assert [(e.reference, e.booked) for e in expected] == [
        (f"{order.id}-debit", True),
        (f"{order.id}-payout-1", True),
    ]
    assert check(order, ledgers_of(order)) == []


def test_a_payout_retried_after_a_refusal_implies_the_second_attempt_only() -> None:
    order = new_order(Side.SELL, "100.000000", "0.92", "0", order_id=uuid4())
    order.confirm(Side.SELL, None, cause())
    order.approve(at_live("0.92"), ANY_RATE, cause(OPERATOR))
    order.record_source_debit("0xdebit", cause(USDC))
    order.record_payout_failure(1, "ACCOUNT_CLOSED", cause(EUR))
    order.retry_payout(cause(OPERATOR))

    expected = {e.reference: e.booked for e in expected_movements(order, history(order))}

    assert expected == {
        f"{order.id}-debit": True,
        f"{order.id}-payout-1": False,
        f"{order.id}-payout-2": None,
    }


def test_a_stray_transfer_is_a_mismatch() -> None:
    order = completed_buy()
    booked = ledgers_of(order) | {
        "coffee-money": Movement(Party.EUR_TREASURY, Decimal("3.50"), None, None)
    }

    assert check(order, booked) == ["held by eur-treasury for no order"]


def test_a_second_payout_of_an_order_is_a_mismatch() -> None:
    order = completed_buy()
    payout = ledgers_of(order)[f"{order.id}-payout-1"]
    booked = ledgers_of(order) | {f"{order.id}-payout-2": payout}

    problems = check(order, booked)

    assert "held, but the order's history never asked for it" in problems
    assert any("2 payouts held" in p for p in problems)


def test_a_recorded_movement_missing_from_the_ledger_is_a_mismatch() -> None:
    order = completed_buy()
    booked = ledgers_of(order)
    del booked[f"{order.id}-payout-1"]

    assert check(order, booked) == ["recorded as done but not held by usdc-chain"]


def test_a_movement_recorded_as_refused_but_booked_is_a_mismatch() -> None:
    order = new_order(Side.BUY, "100.00", "1.08", "0", order_id=uuid4())
    order.confirm(Side.BUY, None, cause())
    order.record_source_debit_failure("INSUFFICIENT_FUNDS", cause(EUR))
    booked = {
        f"{order.id}-debit": Movement(
            Party.EUR_TREASURY, Decimal("100.00"), Direction.TO_TREASURY, order.source_id
        )
    }

    assert check(order, booked) == ["held, but the order recorded it as refused"]


def test_a_wrong_amount_direction_or_counterparty_is_a_mismatch() -> None:
    order = completed_buy()
    debit = f"{order.id}-debit"
    wrong = {
        "amount": Movement(
            Party.EUR_TREASURY, Decimal("100.01"), Direction.TO_TREASURY, order.source_id
        ),
        "direction": Movement(
            Party.EUR_TREASURY, Decimal("100.00"), Direction.FROM_TREASURY, order.source_id
        ),
        "counterparty": Movement(
            Party.EUR_TREASURY, Decimal("100.00"), Direction.TO_TREASURY, UUID(int=99)
        ),
        "party": Movement(
            Party.USDC_CHAIN, Decimal("100.00"), Direction.TO_TREASURY, order.source_id
        ),
    }
    for what, movement in wrong.items():
        problems = check(order, ledgers_of(order) | {debit: movement})
        assert [p.split(":")[0] for p in problems] == [what], what


def test_an_in_flight_movement_may_or_may_not_be_held() -> None:
    order = new_order(Side.BUY, "100.00", "1.08", "0", order_id=uuid4())
    order.confirm(Side.BUY, None, cause())
    held = {
        f"{order.id}-debit": Movement(
            Party.EUR_TREASURY, Decimal("100.00"), Direction.TO_TREASURY, order.source_id
        )
    }

    assert check(order, {}) == []
    assert check(order, held) == []


def test_references_parse_back_legacy_refunds_as_their_first_attempt() -> None:
    order_id = uuid4()

    assert parse_reference(f"{order_id}-refund") == parse_reference(f"{order_id}-refund-1")
    assert parse_reference(f"{order_id}-debit-1") is None
    assert parse_reference(f"{order_id}-payout") is None
    assert parse_reference("not-ours") is None


def folded(events: list[Order.Event]) -> Order:
    order: Order | None = None
    for event in events:
        order = event.mutate(order)
    assert order is not None
    return order


def test_a_payout_booked_after_the_histories_were_read_is_in_flight_not_a_mismatch() -> None:
    order = completed_buy()
    events = history(order)
    read_early = events[: next(i for i, e in enumerate(events) if isinstance(e, Order.Approved))]
    booked = ledgers_of(order)  # read after the order was approved and paid
    first = reconcile(expected_movements(folded(read_early), read_early), booked, {order.id})
    again = reconcile(expected_movements(order, events), booked, {order.id})

    assert [(m.problem, m.unasked) for m in first] == [
        ("held, but the order's history never asked for it", True)
    ]
    assert rechecked(first, again) == []


def test_a_stray_transfer_stays_a_mismatch_when_judged_again() -> None:
    order = completed_buy()
    booked = ledgers_of(order) | {
        "coffee": Movement(Party.EUR_TREASURY, Decimal("3.5"), None, None)
    }
    first = reconcile(expected_movements(order, history(order)), booked, {order.id})

    assert [m.problem for m in rechecked(first, list(first))] == [
        "held by eur-treasury for no order"
    ]


def test_only_a_movement_held_unasked_for_is_judged_again() -> None:
    order = completed_buy()
    booked = {k: v for k, v in ledgers_of(order).items() if "debit" not in k}
    first = reconcile(expected_movements(order, history(order)), booked, {order.id})

    assert [m.problem for m in rechecked(first, [])] == [
        "recorded as done but not held by eur-treasury"
    ]
