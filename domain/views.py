"""The public order view of DESIGN.md section 6: what replies, the API and webhooks show.

Local UUIDs only: provider quote ids, bank references and transaction hashes never appear here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from domain.failures import FailureReason, failure_of
from domain.money import Currency
from domain.order import Order, Side, Status, status_after

Amount = Annotated[
    Decimal,
    Field(json_schema_extra={"type": "string", "pattern": r"^\d+(\.\d+)?$"}),
    PlainSerializer(str, return_type=str, when_used="json"),
]


class OrderView(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    id: UUID = Field(description="the order id; equal to quoteId")
    quote_id: UUID = Field(description="the quote id, which is the order id")
    side: Side
    status: Status
    source_id: UUID = Field(description="buy: the EUR account; sell: the wallet")
    source_currency: Currency
    source_amount: Amount
    destination_id: UUID = Field(description="buy: the wallet; sell: the EUR account")
    destination_currency: Currency
    destination_amount: Amount
    rate: Amount = Field(description="destination units per source unit; final after approval")
    fee: Amount = Field(description="in the source currency, taken off the source amount")
    indicative_rate: Amount | None = Field(default=None, description="the quote's rate")
    indicative_destination_amount: Amount | None = None
    failure_reason: FailureReason | None = Field(
        default=None,
        description="why a party refused a movement of a failed order (status failed, "
        "payout_failed or refund_failed); absent otherwise",
    )
    expires_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls(
            id=order.id,
            quote_id=order.id,
            side=order.side,
            status=order.status,
            source_id=order.source_id,
            source_currency=order.source_currency,
            source_amount=order.source_amount,
            destination_id=order.destination_id,
            destination_currency=order.destination_currency,
            destination_amount=order.destination_amount,
            rate=order.rate,
            fee=order.fee,
            indicative_rate=order.indicative_rate,
            indicative_destination_amount=order.indicative_destination_amount,
            failure_reason=failure_of(order.status, order.failure_reason),
            expires_at=order.expires_at,
            created_at=order.created_on,
            updated_at=order.modified_on,
        )

    def public_json(self) -> dict[str, object]:
        """camelCase JSON; the indicative fields and the failure reason only once an order has
        them."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def public_json_text(self) -> str:
        """`public_json()` as JSON text, made without building the dict first."""
        return self.model_dump_json(by_alias=True, exclude_none=True)


class ApprovalFact(BaseModel):
    """One operator's approval of an order, as operators see it."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    operator_id: str
    operator_name: str | None = None
    at: datetime
    rate: Amount
    live_rate: Amount | None = None
    override: bool = False
    override_reason: str | None = None


class UnresolvedFact(BaseModel):
    """A movement whose outcome a worker could not learn: the order waits for operators."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    leg: str
    attempt: int
    reason: str
    at: datetime


class OpsFacts(BaseModel):
    """What operators see of an order beyond its public view: the approvals so far, a flagged
    movement, and why it failed. Local facts only: no provider, bank or chain identifiers."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    approvals: tuple[ApprovalFact, ...] = ()
    unresolved: UnresolvedFact | None = None
    failure_reason: str | None = None

    def after(self, event: Order.Event) -> OpsFacts:
        """These facts once `event` is applied (a status change settles a flagged movement,
        as in the aggregate)."""
        changes: dict[str, object] = {}
        match event:
            case Order.ApprovalRecorded() | Order.Approved():
                changes["approvals"] = (
                    *self.approvals,
                    ApprovalFact(
                        operator_id=event.actor_id,
                        operator_name=event.actor_name,
                        at=event.timestamp,
                        rate=event.rate,
                        live_rate=event.live_rate,
                        override=event.override,
                        override_reason=event.override_reason,
                    ),
                )
            case Order.MovementUnresolved():
                changes["unresolved"] = UnresolvedFact(
                    leg=event.leg, attempt=event.attempt, reason=event.reason, at=event.timestamp
                )
            case Order.SourceDebitFailed() | Order.PayoutFailed() | Order.RefundFailed():
                changes["failure_reason"] = event.reason
            case Order.Rejected():
                changes["failure_reason"] = event.reason
            case Order.PayoutRetried() | Order.RefundRetried():
                changes["failure_reason"] = None
            case _:
                pass
        settles = status_after(type(event).__name__, Side(event.side)) is not None
        if settles and self.unresolved is not None:
            changes["unresolved"] = None
        return self.model_copy(update=changes) if changes else self

    def needs_attention(self, status: Status) -> bool:
        """An order operators must act on: a refused payout or refund, or a flagged movement."""
        return status in ATTENTION or self.unresolved is not None


ATTENTION = frozenset({Status.PAYOUT_FAILED, Status.REFUND_FAILED})
