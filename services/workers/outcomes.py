"""What a movement came to, and the command that reports it to the engine.

A movement is *done*, *refused* (only the party's explicit refusals) or *unknown*; done and
refused are reported with the outcome command of the leg (`REPORTS`), an unknown one that stays
unknown past a bound with `RecordMovementUnresolved`. Every report's command id is derived from
what it reports, so the same report sent again (after a crash, or by another instance) is a
redelivery that changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, uuid5

from domain import commands as c
from domain.commands import ActorRef
from domain.order import Leg, Order
from services.adapters.ports import Transfer
from services.commanding import new_command

OUTCOME_NAMESPACE = uuid5(NAMESPACE_URL, "urn:otc:worker-outcomes")

C = TypeVar("C", bound=c.Command)


@dataclass(frozen=True)
class Done:
    transfer: Transfer


@dataclass(frozen=True)
class Refused:
    code: str
    message: str


@dataclass(frozen=True)
class Unknown:
    reason: str


Outcome = Done | Refused | Unknown

REPORTS: dict[tuple[Leg, bool], type[c.Command]] = {
    (Leg.DEBIT, True): c.RecordSourceDebit,
    (Leg.DEBIT, False): c.RecordSourceDebitFailure,
    (Leg.REFUND, True): c.RecordRefund,
    (Leg.REFUND, False): c.RecordRefundFailure,
    (Leg.PAYOUT, True): c.RecordPayout,
    (Leg.PAYOUT, False): c.RecordPayoutFailure,
}
"""The outcome command of a movement, by leg and whether it was done (else refused). Done
carries the party's reference, refused the party's refusal; refunds and payouts are attempts,
a debit happens once."""


def reported(  # noqa: PLR0913, PLR0917 - the movement, its outcome, and who says so when
    order: Order, leg: Leg, attempt: int, outcome: Done | Refused, actor: ActorRef, now: datetime
) -> c.Command:
    """The command that reports a movement done or refused."""
    done = isinstance(outcome, Done)
    said = (
        {"reference": outcome.transfer.external_id}
        if isinstance(outcome, Done)
        else {"reason": f"{outcome.code}: {outcome.message}"[:500]}
    )
    per_attempt = {} if leg is Leg.DEBIT else {"attempt": attempt}
    outcome_name = "done" if done else "failed"
    return _report(
        REPORTS[leg, done], order, leg, attempt, outcome_name, actor, now, **per_attempt, **said
    )


def flagged(  # noqa: PLR0913, PLR0917 - the movement, why, and who says so when
    order: Order, leg: Leg, attempt: int, reason: str, actor: ActorRef, now: datetime
) -> c.Command:
    """The command that flags a movement still unknown for operators."""
    return _report(
        c.RecordMovementUnresolved,
        order,
        leg,
        attempt,
        "unresolved",
        actor,
        now,
        leg=leg,
        attempt=attempt,
        reason=reason[:500],
    )


def _report(  # noqa: PLR0913, PLR0917 - what is reported, by whom, when; and its own fields
    cls: type[C],
    order: Order,
    leg: Leg,
    attempt: int,
    outcome: str,
    actor: ActorRef,
    now: datetime,
    /,
    **fields: Any,  # noqa: ANN401 - the command's own fields, checked by its model
) -> C:
    return new_command(
        cls,
        command_id=uuid5(OUTCOME_NAMESPACE, f"{order.id}:{leg.value}:{attempt}:{outcome}"),
        order_id=order.id,
        customer_id=order.customer_id,
        actor=actor,
        issued_at=now,
        **fields,
    )
