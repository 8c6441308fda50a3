"""Why a movement of an order failed, in words a customer may see.

The bank and the chain refuse a movement with a code of their own and a message (the workers
record `"CODE: message"`). Neither is shown to customers: vendor text can carry internal
references and changes with the vendor. The public order view says only one of the codes of
`FailureReason`, and only while the order is failed because of that refusal (`failure_of`).
Operators see the recorded reason itself.
"""

from __future__ import annotations

from enum import StrEnum

from domain.order import Status


class FailureReason(StrEnum):
    """A customer-safe code for a refused movement."""

    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    """The account or wallet to be debited (or refunded from treasury) did not hold enough."""
    ACCOUNT_UNAVAILABLE = "ACCOUNT_UNAVAILABLE"
    """The bank refused the EUR account: closed, or unknown to it."""
    WALLET_UNAVAILABLE = "WALLET_UNAVAILABLE"
    """The chain refused the wallet: its address or network cannot take the transfer."""
    MOVEMENT_REFUSED = "MOVEMENT_REFUSED"
    """Refused for another reason; operations know the details."""


REFUSALS: dict[str, FailureReason] = {
    "INSUFFICIENT_FUNDS": FailureReason.INSUFFICIENT_FUNDS,
    "ACCOUNT_NOT_FOUND": FailureReason.ACCOUNT_UNAVAILABLE,
    "ACCOUNT_CLOSED": FailureReason.ACCOUNT_UNAVAILABLE,
    "INVALID_ADDRESS": FailureReason.WALLET_UNAVAILABLE,
    "UNSUPPORTED_NETWORK": FailureReason.WALLET_UNAVAILABLE,
}
"""The parties' refusal codes that say something a customer can act on; any other code, or a
reason without one, is MOVEMENT_REFUSED."""

FAILED_MOVEMENT = frozenset({Status.FAILED, Status.PAYOUT_FAILED, Status.REFUND_FAILED})
"""The statuses an order is in because a party refused one of its movements."""


def failure_of(status: Status, reason: str | None) -> FailureReason | None:
    """The customer-safe code of an order in `status` whose recorded reason is `reason`."""
    if status not in FAILED_MOVEMENT or reason is None:
        return None
    vendor_code = reason.partition(":")[0].strip().upper()
    return REFUSALS.get(vendor_code, FailureReason.MOVEMENT_REFUSED)
