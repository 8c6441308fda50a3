"""One small function per command: load from the batch's workspace, decide, leave the events
pending. Saving, replies and idempotency keys are the processor's business."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from domain.idempotency import IdempotencyKey
from domain.order import Cause, Order, QuoteTerms, Side, SizeLimits, checked_source_amount
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


@dataclass
class Workspace:
    """The aggregates a batch touches: loaded once, changed in memory, saved together."""

    orders: dict[UUID, Order]
    keys: dict[UUID, IdempotencyKey]

    def order(self, order_id: UUID) -> Order:
        found = self.orders.get(order_id)
        if found is None:
            raise DomainError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        return found


def cause_of(command: c.Command, now: datetime) -> Cause:
    return Cause(actor=command.actor.to_actor(), command_id=command.command_id, now=now)


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


def request_quote(
    ws: Workspace, cmd: c.RequestQuote, inputs: Inputs, policy: Policy, now: datetime
) -> Order:
    checked_source_amount(cmd.side, cmd.source_amount, policy.limits)
    if cmd.side is Side.BUY:
        check_buy_source(inputs.accounts.get(cmd.source_id), cmd.customer_id)
        check_buy_destination(inputs.wallets.get(cmd.destination_id), cmd.customer_id)
    else:
        check_sell_source(inputs.wallets.get(cmd.source_id), cmd.customer_id)
        check_sell_destination(inputs.accounts.get(cmd.destination_id), cmd.customer_id)
        check_sell_balance(inputs.balance_for(cmd.command_id), cmd.source_amount)
    order = Order.request_quote(
        order_id=cmd.order_id,
        customer_id=cmd.customer_id,
        side=cmd.side,
        source_id=cmd.source_id,
        destination_id=cmd.destination_id,
        source_amount=cmd.source_amount,
        limits=policy.limits,
        terms=terms_from(inputs.price_for(cmd.command_id), now, policy),
        cause=cause_of(cmd, now),
    )
    ws.orders[order.id] = order
    return order


def requote(order: Order, cmd: c.Requote, inputs: Inputs, policy: Policy, now: datetime) -> None:
    order.requote(terms_from(inputs.price_for(cmd.command_id), now, policy), cause_of(cmd, now))


def confirm(order: Order, cmd: c.ConfirmQuote, _: Inputs, __: Policy, now: datetime) -> None:
    order.confirm(cmd.side, cmd.max_slippage_bps, cause_of(cmd, now))


def cancel(order: Order, cmd: c.CancelOrder, _: Inputs, __: Policy, now: datetime) -> None:
    order.cancel(cause_of(cmd, now))


def expire(order: Order, cmd: c.ExpireQuote, _: Inputs, __: Policy, now: datetime) -> None:
    order.expire(cause_of(cmd, now))


def approve(order: Order, cmd: c.ApproveOrder, inputs: Inputs, _: Policy, now: datetime) -> None:
    if cmd.rate is not None:
        order.approve(cmd.rate, None, cause_of(cmd, now))
        return
    price = inputs.price_for(cmd.command_id)
    order.approve(price.rate, price.provider_quote_id, cause_of(cmd, now))


def reject(order: Order, cmd: c.RejectOrder, _: Inputs, __: Policy, now: datetime) -> None:
    order.reject(cmd.reason, cause_of(cmd, now))


def retry_payout(order: Order, cmd: c.RetryPayout, _: Inputs, __: Policy, now: datetime) -> None:
    order.retry_payout(cause_of(cmd, now))


def record_source_debit(
    order: Order, cmd: c.RecordSourceDebit, _: Inputs, __: Policy, now: datetime
) -> None:
    order.record_source_debit(cmd.reference, cause_of(cmd, now))


def record_source_debit_failure(
    order: Order, cmd: c.RecordSourceDebitFailure, _: Inputs, __: Policy, now: datetime
) -> None:
    order.record_source_debit_failure(cmd.reason, cause_of(cmd, now))


def record_refund(order: Order, cmd: c.RecordRefund, _: Inputs, __: Policy, now: datetime) -> None:
    order.record_refund(cmd.reference, cause_of(cmd, now))


def record_payout(order: Order, cmd: c.RecordPayout, _: Inputs, __: Policy, now: datetime) -> None:
    order.record_payout(cmd.attempt, cmd.reference, cause_of(cmd, now))


def record_payout_failure(
    order: Order, cmd: c.RecordPayoutFailure, _: Inputs, __: Policy, now: datetime
) -> None:
    order.record_payout_failure(cmd.attempt, cmd.reason, cause_of(cmd, now))


OrderHandler = Callable[[Order, c.Command, Inputs, Policy, datetime], None]

HANDLERS: dict[type[c.Command], OrderHandler] = {
    c.Requote: requote,  # type: ignore[dict-item]
    c.ConfirmQuote: confirm,  # type: ignore[dict-item]
    c.CancelOrder: cancel,  # type: ignore[dict-item]
    c.ExpireQuote: expire,  # type: ignore[dict-item]
    c.ApproveOrder: approve,  # type: ignore[dict-item]
    c.RejectOrder: reject,  # type: ignore[dict-item]
    c.RetryPayout: retry_payout,  # type: ignore[dict-item]
    c.RecordSourceDebit: record_source_debit,  # type: ignore[dict-item]
    c.RecordSourceDebitFailure: record_source_debit_failure,  # type: ignore[dict-item]
    c.RecordRefund: record_refund,  # type: ignore[dict-item]
    c.RecordPayout: record_payout,  # type: ignore[dict-item]
    c.RecordPayoutFailure: record_payout_failure,  # type: ignore[dict-item]
}
