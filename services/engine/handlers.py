"""The engine's command table: for every command, one entry with its handler, what it needs from
the outside world, and who may send it. The processor reads only this table.

Every handler has one signature, `(order | None, command, context) -> Order`: it decides against
the order (None when the command names no existing order) and leaves the new events pending on
the order it returns. Saving, replies and idempotency keys are the processor's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain import commands as c
from domain.authority import CUSTOMER, EXPIRY, MOVER, OPERATOR, Authority
from domain.errors import DomainError, ErrorCode
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
    FiatAccount,
    Wallet,
    check_buy_destination,
    check_buy_source,
    check_sell_balance,
    check_sell_destination,
    check_sell_source,
)
from services.adapters.ports import Price


@dataclass
class Inputs:
    """What the outside world said, fetched for the whole batch before deciding."""

    prices: dict[UUID, Price | DomainError] = field(default_factory=dict)
    balances: dict[UUID, Decimal | DomainError] = field(default_factory=dict)
    accounts: dict[UUID, FiatAccount] = field(default_factory=dict)
    wallets: dict[UUID, Wallet] = field(default_factory=dict)

    def price_for(self, command_id: UUID) -> Price:
        found = self.prices.get(command_id)
        if found is None:
            raise DomainError(ErrorCode.QUOTE_UNAVAILABLE, "no price could be had")
        if isinstance(found, DomainError):
            raise found
        return found

    def balance_for(self, command_id: UUID) -> Decimal:
        found = self.balances.get(command_id)
        if found is None:
            raise DomainError(ErrorCode.QUOTE_UNAVAILABLE, "the wallet balance could not be read")
        if isinstance(found, DomainError):
            raise found
        return found


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


@dataclass(frozen=True)
class Lookups:
    """What one command needs from outside before it can be decided."""

    price: tuple[Side, Decimal] | None = None
    """Price converting this source amount on this side."""
    accounts: frozenset[UUID] = frozenset()
    wallets: frozenset[UUID] = frozenset()
    balance_of: UUID | None = None
    """The wallet whose live USDC balance the decision checks."""


NOTHING = Lookups()


# ---------------------------------------------------------------------------- what commands need


def nothing(_order: Order | None, _command: c.Command, _policy: Policy) -> Lookups:
    return NOTHING


def order_price(order: Order | None, _command: c.Command, _policy: Policy) -> Lookups:
    """The live price of the order's source amount (a requote, an approval)."""
    return NOTHING if order is None else Lookups(price=(order.side, order.source_amount))


def quote_inputs(order: Order | None, cmd: c.RequestQuote, policy: Policy) -> Lookups:
    """A new quote: its account and wallet, a price, and for a sell the wallet's live balance.
    An amount the decision refuses anyway needs no price."""
    if order is not None:
        return NOTHING  # a redelivered quote is answered from the order
    buy = cmd.side is Side.BUY
    account, wallet = (
        (cmd.source_id, cmd.destination_id) if buy else (cmd.destination_id, cmd.source_id)
    )
    try:
        amount = checked_source_amount(cmd.side, cmd.source_amount, policy.limits)
    except DomainError:
        return Lookups(accounts=frozenset({account}), wallets=frozenset({wallet}))
    return Lookups(
        price=(cmd.side, amount),
        accounts=frozenset({account}),
        wallets=frozenset({wallet}),
        balance_of=None if buy else wallet,
    )


# ---------------------------------------------------------------------------- handlers


def existing(order: Order | None) -> Order:
    if order is None:
        raise DomainError(ErrorCode.ORDER_NOT_FOUND, "order not found")
    return order


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


def requote(order: Order | None, cmd: c.Requote, ctx: Context) -> Order:
    found = existing(order)
    price = ctx.inputs.price_for(cmd.command_id)
    found.requote(terms_from(price, ctx.now, ctx.policy), ctx.cause(cmd))
    return found


def confirm(order: Order | None, cmd: c.ConfirmQuote, ctx: Context) -> Order:
    found = existing(order)
    found.confirm(cmd.side, cmd.max_slippage_bps, ctx.cause(cmd))
    return found


def cancel(order: Order | None, cmd: c.CancelOrder, ctx: Context) -> Order:
    found = existing(order)
    found.cancel(ctx.cause(cmd))
    return found


def expire(order: Order | None, cmd: c.ExpireQuote, ctx: Context) -> Order:
    found = existing(order)
    found.expire(ctx.cause(cmd))
    return found


def approve(order: Order | None, cmd: c.ApproveOrder, ctx: Context) -> Order:
    found = existing(order)
    live = ctx.inputs.price_for(cmd.command_id)
    request = ApprovalRequest(
        rate=cmd.rate,
        live_rate=live.rate,
        provider_quote_id=live.provider_quote_id,
        override=cmd.override,
        reason=cmd.reason,
    )
    found.approve(request, ctx.policy.approval, ctx.cause(cmd))
    return found


def reject(order: Order | None, cmd: c.RejectOrder, ctx: Context) -> Order:
    found = existing(order)
    found.reject(cmd.reason, ctx.cause(cmd))
    return found


def retry_payout(order: Order | None, cmd: c.RetryPayout, ctx: Context) -> Order:
    found = existing(order)
    found.retry_payout(ctx.cause(cmd))
    return found


def retry_refund(order: Order | None, cmd: c.RetryRefund, ctx: Context) -> Order:
    found = existing(order)
    found.retry_refund(ctx.cause(cmd))
    return found


def record_source_debit(order: Order | None, cmd: c.RecordSourceDebit, ctx: Context) -> Order:
    found = existing(order)
    found.record_source_debit(cmd.reference, ctx.cause(cmd))
    return found


def record_source_debit_failure(
    order: Order | None, cmd: c.RecordSourceDebitFailure, ctx: Context
) -> Order:
    found = existing(order)
    found.record_source_debit_failure(cmd.reason, ctx.cause(cmd))
    return found


def record_refund(order: Order | None, cmd: c.RecordRefund, ctx: Context) -> Order:
    found = existing(order)
    found.record_refund(cmd.attempt, cmd.reference, ctx.cause(cmd))
    return found


def record_refund_failure(order: Order | None, cmd: c.RecordRefundFailure, ctx: Context) -> Order:
    found = existing(order)
    found.record_refund_failure(cmd.attempt, cmd.reason, ctx.cause(cmd))
    return found


def record_payout(order: Order | None, cmd: c.RecordPayout, ctx: Context) -> Order:
    found = existing(order)
    found.record_payout(cmd.attempt, cmd.reference, ctx.cause(cmd))
    return found


def record_payout_failure(order: Order | None, cmd: c.RecordPayoutFailure, ctx: Context) -> Order:
    found = existing(order)
    found.record_payout_failure(cmd.attempt, cmd.reason, ctx.cause(cmd))
    return found


def record_movement_unresolved(
    order: Order | None, cmd: c.RecordMovementUnresolved, ctx: Context
) -> Order:
    found = existing(order)
    found.record_movement_unresolved(cmd.leg, cmd.attempt, cmd.reason, ctx.cause(cmd))
    return found


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Entry:
    """One command: its handler, what it needs from outside, who may send it, and whether a
    lapsed quote the command finds is recorded as expired first (every command on an existing
    order but the sweeper's own ExpireQuote, which decides that itself)."""

    handle: Callable[[Order | None, Any, Context], Order]
    authority: Authority
    needs: Callable[[Order | None, Any, Policy], Lookups] = nothing
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
