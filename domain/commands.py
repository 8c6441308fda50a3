"""Commands: imperative requests to the engine, as pydantic models (camelCase on the wire).

The envelope fields (command id, order, customer, actor, idempotency key, time) are common to
every command; each command adds its own payload fields.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StrictStr
from pydantic.alias_generators import to_camel

from domain.order import Actor, ActorKind, Leg, Side


def _decimal_from_text(value: object) -> object:
    if isinstance(value, float):
        raise ValueError("numbers travel as decimal strings or integers, never as floats")  # noqa: TRY004
    return value


WholeNumber = Annotated[int, BeforeValidator(_decimal_from_text)]

DecimalText = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_text),
    Field(json_schema_extra={"type": "string"}),
    PlainSerializer(str, return_type=str, when_used="json"),
]


class ActorRef(BaseModel):
    """Who sends a command: a customer (id: the customer id), an operator (id: the operator's
    id, name: the person's name) or a system process (id: its name, e.g. `eur-treasury`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ActorKind = Field(description="customer, operator or system")
    id: StrictStr = Field(
        min_length=1,
        max_length=200,
        description="the customer id, the operator's id, or the process's name",
    )
    name: StrictStr | None = Field(
        default=None, min_length=1, max_length=200, description="an operator's name"
    )

    @classmethod
    def customer(cls, customer_id: UUID) -> ActorRef:
        return cls(kind=ActorKind.CUSTOMER, id=str(customer_id))

    @classmethod
    def operator(cls, operator_id: UUID | str, name: str) -> ActorRef:
        return cls(kind=ActorKind.OPERATOR, id=str(operator_id), name=name)

    @classmethod
    def system(cls, process: str) -> ActorRef:
        return cls(kind=ActorKind.SYSTEM, id=process)

    def to_actor(self) -> Actor:
        return Actor(self.kind, self.id, self.name)


class Command(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
    )

    command_id: UUID
    order_id: UUID
    customer_id: UUID
    actor: ActorRef
    idempotency_key: UUID | None = None
    issued_at: datetime

    def moves(self) -> Leg | None:
        """The leg whose outcome this command reports (a worker's outcome), or None."""
        return None


class RequestQuote(Command):
    type: Literal["RequestQuote"] = "RequestQuote"
    side: Side = Side.BUY
    source_id: UUID
    destination_id: UUID
    source_amount: DecimalText


class Requote(Command):
    type: Literal["Requote"] = "Requote"


class ConfirmQuote(Command):
    type: Literal["ConfirmQuote"] = "ConfirmQuote"
    side: Side = Side.BUY
    max_slippage_bps: WholeNumber | None = Field(default=None, ge=0, le=10_000)


class CancelOrder(Command):
    type: Literal["CancelOrder"] = "CancelOrder"


class ExpireQuote(Command):
    type: Literal["ExpireQuote"] = "ExpireQuote"


class ApproveOrder(Command):
    type: Literal["ApproveOrder"] = "ApproveOrder"
    rate: DecimalText | None = Field(default=None, gt=0)
    override: bool = False
    reason: str | None = Field(default=None, max_length=500)


class RejectOrder(Command):
    type: Literal["RejectOrder"] = "RejectOrder"
    reason: str = Field(default="rejected by operator", max_length=500)


class RetryPayout(Command):
    type: Literal["RetryPayout"] = "RetryPayout"


class RetryRefund(Command):
    type: Literal["RetryRefund"] = "RetryRefund"


class RecordSourceDebit(Command):
    type: Literal["RecordSourceDebit"] = "RecordSourceDebit"
    reference: str = Field(min_length=1, max_length=200)

    def moves(self) -> Leg:
        return Leg.DEBIT


class RecordSourceDebitFailure(Command):
    type: Literal["RecordSourceDebitFailure"] = "RecordSourceDebitFailure"
    reason: str = Field(max_length=500)

    def moves(self) -> Leg:
        return Leg.DEBIT


class RecordRefund(Command):
    type: Literal["RecordRefund"] = "RecordRefund"
    attempt: WholeNumber = Field(default=1, ge=1)
    reference: str = Field(min_length=1, max_length=200)

    def moves(self) -> Leg:
        return Leg.REFUND


class RecordRefundFailure(Command):
    type: Literal["RecordRefundFailure"] = "RecordRefundFailure"
    attempt: WholeNumber = Field(ge=1)
    reason: str = Field(max_length=500)

    def moves(self) -> Leg:
        return Leg.REFUND


class RecordPayout(Command):
    type: Literal["RecordPayout"] = "RecordPayout"
    attempt: WholeNumber = Field(ge=1)
    reference: str = Field(min_length=1, max_length=200)

    def moves(self) -> Leg:
        return Leg.PAYOUT


class RecordPayoutFailure(Command):
    type: Literal["RecordPayoutFailure"] = "RecordPayoutFailure"
    attempt: WholeNumber = Field(ge=1)
    reason: str = Field(max_length=500)

    def moves(self) -> Leg:
        return Leg.PAYOUT


class RecordMovementUnresolved(Command):
    type: Literal["RecordMovementUnresolved"] = "RecordMovementUnresolved"
    leg: Leg
    attempt: WholeNumber = Field(ge=1)
    reason: str = Field(max_length=500)

    def moves(self) -> Leg:
        return self.leg


AnyCommand = Annotated[
    RequestQuote
    | Requote
    | ConfirmQuote
    | CancelOrder
    | ExpireQuote
    | ApproveOrder
    | RejectOrder
    | RetryPayout
    | RetryRefund
    | RecordSourceDebit
    | RecordSourceDebitFailure
    | RecordRefund
    | RecordRefundFailure
    | RecordPayout
    | RecordPayoutFailure
    | RecordMovementUnresolved,
    Field(discriminator="type"),
]

COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        RequestQuote,
        Requote,
        ConfirmQuote,
        CancelOrder,
        ExpireQuote,
        ApproveOrder,
        RejectOrder,
        RetryPayout,
        RetryRefund,
        RecordSourceDebit,
        RecordSourceDebitFailure,
        RecordRefund,
        RecordRefundFailure,
        RecordPayout,
        RecordPayoutFailure,
        RecordMovementUnresolved,
    )
}
