"""A failed order says why in a customer-safe code (`failureReason`), never in the bank's or the
chain's own words; the order list's row says the same as the order."""

from __future__ import annotations

import pytest

from domain.failures import FailureReason, failure_of
from domain.order import Order, Side, Status
from domain.views import OrderView
from tests.unit.test_order_list_projection import (
    Desk,
    Step,
    approve,
    confirm,
    debit,
    debit_fails,
    drive,
    fold,
    order_events,
    payout_fails,
    refund_fails,
    reject,
    retry_payout,
    retry_refund,
)

VENDOR_TEXT = "acc-9"
"""What the parties' reasons in the steps carry besides their code: a vendor's reference."""


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("INSUFFICIENT_FUNDS: balance 12.00 below 100.00", FailureReason.INSUFFICIENT_FUNDS),
        ("ACCOUNT_CLOSED: account acc-9 is closed", FailureReason.ACCOUNT_UNAVAILABLE),
        ("ACCOUNT_NOT_FOUND: no account acc-9", FailureReason.ACCOUNT_UNAVAILABLE),
        ("INVALID_ADDRESS: 0xdead is not an address", FailureReason.WALLET_UNAVAILABLE),
        ("UNSUPPORTED_NETWORK: solana", FailureReason.WALLET_UNAVAILABLE),
        ("SAME_ACCOUNT: from and to are acc-9", FailureReason.MOVEMENT_REFUSED),
        ("the desk could not book it", FailureReason.MOVEMENT_REFUSED),
    ],
)
def test_a_party_s_refusal_is_mapped_to_a_customer_safe_code(
    reason: str, code: FailureReason
) -> None:
    assert failure_of(Status.FAILED, reason) is code


@pytest.mark.parametrize("status", [Status.REJECTED, Status.REFUND_PENDING, Status.COMPLETED])
def test_only_a_failed_movement_has_a_failure_reason(status: Status) -> None:
    assert failure_of(status, "INSUFFICIENT_FUNDS: balance 12.00") is None


def public_and_row(order: Order) -> tuple[dict[str, object], dict[str, object]]:
    return OrderView.of(order).public_json(), fold(order_events(order))[-1].view.public_json()


@pytest.mark.parametrize(
    ("side", "steps", "status", "code"),
    [
        (Side.BUY, [confirm, debit_fails], Status.FAILED, "INSUFFICIENT_FUNDS"),
        (Side.SELL, [confirm, approve, debit_fails], Status.FAILED, "INSUFFICIENT_FUNDS"),
        (
            Side.BUY,
            [confirm, debit, approve, payout_fails],
            Status.PAYOUT_FAILED,
            "WALLET_UNAVAILABLE",
        ),
        (
            Side.BUY,
            [confirm, debit, reject, refund_fails],
            Status.REFUND_FAILED,
            "ACCOUNT_UNAVAILABLE",
        ),
    ],
)
def test_a_failed_order_shows_the_code_and_no_vendor_text(
    side: Side, steps: list[Step], status: Status, code: str
) -> None:
    desk = Desk()
    order = drive(desk.quote(side), desk, steps)

    body, row = public_and_row(order)

    assert order.status is status
    assert body["failureReason"] == code
    assert VENDOR_TEXT not in str(body)
    assert row == body


@pytest.mark.parametrize(
    "steps",
    [
        [confirm, debit, approve, payout_fails, retry_payout],
        [confirm, debit, reject, refund_fails, retry_refund],
        [confirm, debit, reject],
    ],
)
def test_a_retried_or_rejected_order_has_no_failure_reason(steps: list[Step]) -> None:
    desk = Desk()
    order = drive(desk.quote(Side.BUY), desk, steps)

    body, row = public_and_row(order)

    assert order.status in {Status.PAYOUT_PENDING, Status.REFUND_PENDING}
    assert "failureReason" not in body
    assert row == body
