"""The engine's command table and how one command is decided with it.

`COMMANDS` has one entry per command: its handler, what it needs from the outside world
(services/engine/lookups.py), who may send it, and whether a lapsed quote it finds is recorded as
expired first. Every handler has one signature, `(order | None, command, context) -> Order`: it
decides against the order (None when the command names no existing order) and leaves the new
events pending on the order it returns.

`decide` runs one command of a batch through its entry: who may send it first, then the
idempotency key (domain/idempotency.py has the rule), a redelivery answered from the version it
reached, and otherwise the handler. Nothing here does I/O but reading an old version of an order
for a redelivery's answer; saving is services/engine/processor.py's, replying
services/engine/service.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import commands as c
from domain.authority import CUSTOMER, EXPIRY, MOVER, OPERATOR, Authority
from domain.errors import DomainError, ErrorCode
from domain.idempotency import IdempotencyKey, keeps, key_id, request_fingerprint
from domain.order import (
    ApprovalControls,
    ApprovalRequest,
    Cause,
    Order,
    QuoteTerms,
    Side,
    SizeLimits,
    checked_source_amount,
)
from domain.resources import (
    check_buy_destination,
    check_buy_source,
    check_sell_balance,
    check_sell_destination,
    check_sell_source,
)
from domain.views import OrderView
from services.adapters.ports import Price
from services.contracts import ErrorBody
from services.engine.lookups import Inputs, Lookups, nothing, order_price, quote_inputs

C = TypeVar("C", bound=c.Command)


@dataclass(frozen=True)
class Policy:
    quote_ttl: timedelta
    limits: SizeLimits
    approval: ApprovalControls


@dataclass(frozen=True)
class Context:
    """Everything a decision takes besides the order and the command."""

    inputs: Inputs
    policy: Policy
    now: datetime

    def cause(self, command: c.Command) -> Cause:
        return Cause(actor=command.actor.to_actor(), command_id=command.command_id, now=self.now)


# ---------------------------------------------------------------------------- handlers


def terms_from(price: Price, now: datetime, policy: Policy) -> QuoteTerms:
    expires_at = now + policy.quote_ttl
    if price.valid_until is not None:
        expires_at = min(expires_at, price.valid_until)
    return QuoteTerms(
        rate=price.rate,
        fee=price.fee,
        expires_at=expires_at,
        provider_quote_id=price.provider_quote_id,
    )


def request_quote(order: Order | None, cmd: c.RequestQuote, ctx: Context) -> Order:
    if order is not None:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "this order id is already in use")
    inputs, policy = ctx.inputs, ctx.policy
    checked_source_amount(cmd.side, cmd.source_amount, policy.limits)
    if cmd.side is Side.BUY:
        check_buy_source(inputs.accounts.get(cmd.source_id), cmd.customer_id)
        check_buy_destination(inputs.wallets.get(cmd.destination_id), cmd.customer_id)
    else:
        check_sell_source(inputs.wallets.get(cmd.source_id), cmd.customer_id)
        check_sell_destination(inputs.accounts.get(cmd.destination_id), cmd.customer_id)
        check_sell_balance(inputs.balance_for(cmd.command_id), cmd.source_amount)
    return Order.request_quote(
        order_id=cmd.order_id,
        customer_id=cmd.customer_id,
        side=cmd.side,
        source_id=cmd.source_id,
        destination_id=cmd.destination_id,
        source_amount=cmd.source_amount,
        limits=policy.limits,
        terms=terms_from(inputs.price_for(cmd.command_id), ctx.now, policy),
        cause=ctx.cause(cmd),
    )


def on_existing(
    decide: Callable[[Order, C, Context], None],
) -> Callable[[Order | None, C, Context], Order]:
    """A handler of a command on an existing order (ORDER_NOT_FOUND without one)."""

    def handle(order: Order | None, cmd: C, ctx: Context) -> Order:
        if order is None:
            raise DomainError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        decide(order, cmd, ctx)
        return order

    return handle


@on_existing
def requote(order: Order, cmd: c.Requote, ctx: Context) -> None:
    order.requote(
        terms_from(ctx.inputs.price_for(cmd.command_id), ctx.now, ctx.policy), ctx.cause(cmd)
    )


@on_existing
def confirm(order: Order, cmd: c.ConfirmQuote, ctx: Context) -> None:
    order.confirm(cmd.side, cmd.max_slippage_bps, ctx.cause(cmd))


@on_existing
def cancel(order: Order, cmd: c.CancelOrder, ctx: Context) -> None:
    order.cancel(ctx.cause(cmd))


@on_existing
def expire(order: Order, cmd: c.ExpireQuote, ctx: Context) -> None:
    order.expire(ctx.cause(cmd))


@on_existing
def approve(order: Order, cmd: c.ApproveOrder, ctx: Context) -> None:
    live = ctx.inputs.price_for(cmd.command_id)
    request = ApprovalRequest(
        rate=cmd.rate,
        live_rate=live.rate,
        provider_quote_id=live.provider_quote_id,
        override=cmd.override,
        reason=cmd.reason,
    )
    order.approve(request, ctx.policy.approval, ctx.cause(cmd))


@on_existing
def reject(order: Order, cmd: c.RejectOrder, ctx: Context) -> None:
    order.reject(cmd.reason, ctx.cause(cmd))


@on_existing
def retry_payout(order: Order, cmd: c.RetryPayout, ctx: Context) -> None:
    order.retry_payout(ctx.cause(cmd))


@on_existing
def retry_refund(order: Order, cmd: c.RetryRefund, ctx: Context) -> None:
    order.retry_refund(ctx.cause(cmd))


@on_existing
def record_source_debit(order: Order, cmd: c.RecordSourceDebit, ctx: Context) -> None:
    order.record_source_debit(cmd.reference, ctx.cause(cmd))


@on_existing
def record_source_debit_failure(
    order: Order, cmd: c.RecordSourceDebitFailure, ctx: Context
) -> None:
    order.record_source_debit_failure(cmd.reason, ctx.cause(cmd))


@on_existing
def record_refund(order: Order, cmd: c.RecordRefund, ctx: Context) -> None:
    order.record_refund(cmd.attempt, cmd.reference, ctx.cause(cmd))


@on_existing
def record_refund_failure(order: Order, cmd: c.RecordRefundFailure, ctx: Context) -> None:
    order.record_refund_failure(cmd.attempt, cmd.reason, ctx.cause(cmd))


@on_existing
def record_payout(order: Order, cmd: c.RecordPayout, ctx: Context) -> None:
    order.record_payout(cmd.attempt, cmd.reference, ctx.cause(cmd))


@on_existing
def record_payout_failure(order: Order, cmd: c.RecordPayoutFailure, ctx: Context) -> None:
    order.record_payout_failure(cmd.attempt, cmd.reason, ctx.cause(cmd))


@on_existing
def record_movement_unresolved(order: Order, cmd: c.RecordMovementUnresolved, ctx: Context) -> None:
    order.record_movement_unresolved(cmd.leg, cmd.attempt, cmd.reason, ctx.cause(cmd))


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Entry:
    """One command: its handler, what it needs from outside, who may send it, and whether a
    lapsed quote the command finds is recorded as expired first (every command on an existing
    order but the sweeper's own ExpireQuote, which decides that itself)."""

    handle: Callable[[Order | None, Any, Context], Order]
    authority: Authority
    needs: Callable[[Order | None, Any, SizeLimits], Lookups] = nothing
    observes_time: bool = True

    @property
    def looks_outside(self) -> bool:
        """Whether the command needs anything from the outside world before its decision."""
        return self.needs is not nothing


COMMANDS: dict[type[c.Command], Entry] = {
    c.RequestQuote: Entry(request_quote, CUSTOMER, needs=quote_inputs, observes_time=False),
    c.Requote: Entry(requote, CUSTOMER, needs=order_price),
    c.ConfirmQuote: Entry(confirm, CUSTOMER),
    c.CancelOrder: Entry(cancel, CUSTOMER),
    c.ExpireQuote: Entry(expire, EXPIRY, observes_time=False),
    c.ApproveOrder: Entry(approve, OPERATOR, needs=order_price),
    c.RejectOrder: Entry(reject, OPERATOR),
    c.RetryPayout: Entry(retry_payout, OPERATOR),
    c.RetryRefund: Entry(retry_refund, OPERATOR),
    c.RecordSourceDebit: Entry(record_source_debit, MOVER),
    c.RecordSourceDebitFailure: Entry(record_source_debit_failure, MOVER),
    c.RecordRefund: Entry(record_refund, MOVER),
    c.RecordRefundFailure: Entry(record_refund_failure, MOVER),
    c.RecordPayout: Entry(record_payout, MOVER),
    c.RecordPayoutFailure: Entry(record_payout_failure, MOVER),
    c.RecordMovementUnresolved: Entry(record_movement_unresolved, MOVER),
}


# ---------------------------------------------------------------------------- deciding one command


@dataclass
class Workspace:
    """The aggregates a batch touches: loaded once, changed in memory, saved together."""

    orders: dict[UUID, Order]
    keys: dict[UUID, IdempotencyKey]

    def answered(self, cmd: c.Command) -> bool:
        """Already answered before: a used idempotency key or a command the order recorded."""
        if cmd.idempotency_key and key_id(cmd.customer_id, cmd.idempotency_key) in self.keys:
            return True
        order = self.orders.get(cmd.order_id)
        return order is not None and order.version_after(cmd.command_id) is not None


History = Callable[[UUID, int], Order | None]
"""An order as it was at a version (read from the event store)."""


@dataclass
class Batch:
    """The shared state of deciding one batch."""

    ws: Workspace
    inputs: Inputs
    policy: Policy
    now: datetime
    history: History
    touched: dict[UUID, Aggregate] = field(default_factory=dict)
    views: dict[tuple[UUID, int], OrderView] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The outcome of one command before it is saved: enough to build its reply afterwards."""

    command: c.Command
    view: OrderView | None = None
    error: DomainError | None = None
    version: int | None = None
    stored_reply: dict[str, Any] | None = None
    """A replayed answer: what the idempotency key kept."""

    def as_stored(self) -> dict[str, Any]:
        """What an idempotency key keeps of this result, to replay it."""
        return {
            "ok": self.error is None,
            "order": None if self.view is None else self.view.public_json(),
            "error": None
            if self.error is None
            else ErrorBody.of(self.error).model_dump(mode="json"),
            "version": self.version,
        }


def decide(cmd: c.Command, batch: Batch) -> Result:
    """One command under its idempotency key, if it has one: a used key replays its answer (or
    refuses another request), a new one keeps the answer unless a retry may change it."""
    if cmd.idempotency_key is None:
        return run(cmd, batch)
    kid = key_id(cmd.customer_id, cmd.idempotency_key)
    request = request_fingerprint(cmd)
    record = batch.ws.keys.get(kid)
    if record is not None:
        try:
            record.check_same_request(request)
        except DomainError as error:
            return Result(cmd, error=error)
        return Result(cmd, stored_reply=record.reply)
    result = run(cmd, batch)
    if keeps(result.error):
        record = IdempotencyKey.use(
            customer_id=cmd.customer_id,
            key=cmd.idempotency_key,
            fingerprint=request,
            command_id=cmd.command_id,
            reply=result.as_stored(),
            now=batch.now,
        )
        batch.ws.keys[kid] = batch.touched[kid] = record
    return result


def run(cmd: c.Command, batch: Batch) -> Result:
    """One command through its table entry: who may send it, a redelivery answered from the
    version it reached, otherwise the decision, its events left pending."""
    entry = COMMANDS[type(cmd)]
    context = Context(batch.inputs, batch.policy, batch.now)
    actor = cmd.actor.to_actor()
    order = batch.ws.orders.get(cmd.order_id)
    try:
        entry.authority.check(actor, order, cmd.moves())
        if order is not None:
            order.check_owner(actor)
            done_at = order.version_after(cmd.command_id)
            if done_at is not None:
                return Result(cmd, view=view_at(order, done_at, batch), version=done_at)
        try:
            if order is not None and entry.observes_time:
                order.observe_time(context.cause(cmd))
            order = entry.handle(order, cmd, context)
        finally:
            if order is not None and order.pending_events:
                batch.ws.orders[order.id] = batch.touched[order.id] = order
    except DomainError as error:
        return Result(cmd, error=error)
    view = OrderView.of(order)
    batch.views[(order.id, order.version)] = view
    return Result(cmd, view=view, version=order.version)


def view_at(order: Order, version: int, batch: Batch) -> OrderView:
    if (order.id, version) in batch.views:
        return batch.views[(order.id, version)]
    if version == order.version:
        return OrderView.of(order)
    then = batch.history(order.id, version)
    if then is None:
        raise DomainError(ErrorCode.INTERNAL_ERROR, "the order's history could not be read")
    return OrderView.of(then)
