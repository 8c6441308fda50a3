"""`otc command ...`: publish one command to `otc.commands` and print the engine's reply as JSON.

Customer commands act as the customer given; operator commands act as the named operator whose
id `--operator` gives (`otc keys create-operator` prints it; the name comes from the key store)
and find the order's customer in the event store. Exit code 0 when the engine accepted the
command, 1 when it refused it (the reply says why), 2 on bad input, 3 when no reply came in time.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer

from domain import commands as c
from domain.commands import ActorRef
from domain.order import Side
from services.auth.key_store import ApiKeyStore
from services.auth.principal import OperatorIdentity
from services.command_client import CommandClient, CommandTimeoutError
from services.commanding import new_command
from services.engine.event_store import open_orders
from services.settings import Settings

command_app = typer.Typer(no_args_is_help=True, help="Publish a command and print the reply.")

Timeout = Annotated[float, typer.Option(help="seconds to wait for the reply")]
Operator = Annotated[
    UUID, typer.Option(help="the id of the operator acting (see otc keys create-operator)")
]
Key = Annotated[UUID | None, typer.Option("--idempotency-key", help="an Idempotency-Key (UUID)")]


def _send(command: c.Command, timeout: float) -> None:
    async def go() -> dict[str, Any]:
        async with CommandClient(Settings()) as client:
            reply = await client.send(command, timeout=timeout)
        return reply.model_dump(mode="json", by_alias=True)

    try:
        reply = asyncio.run(go())
    except CommandTimeoutError as error:
        typer.echo(
            f"{error}; the command may still complete, and sending it again is safe", err=True
        )
        raise typer.Exit(3) from None
    typer.echo(json.dumps(reply, indent=2))
    raise typer.Exit(0 if reply["ok"] else 1)


C = TypeVar("C", bound=c.Command)


def _as_customer(
    cls: type[C],
    order_id: UUID,
    customer_id: UUID,
    key: UUID | None,
    **fields: Any,  # noqa: ANN401 - the command's own fields, checked by its model
) -> C:
    """A command of the customer on their own order."""
    return new_command(
        cls,
        order_id=order_id,
        customer_id=customer_id,
        actor=ActorRef.customer(customer_id),
        idempotency_key=key,
        **fields,
    )


def _as_operator(
    cls: type[C],
    order_id: UUID,
    actor: ActorRef,
    **fields: Any,  # noqa: ANN401 - the command's own fields, checked by its model
) -> C:
    """A command of an operator on an order, on behalf of the customer who owns it."""
    return new_command(
        cls, order_id=order_id, customer_id=_owner_of(order_id), actor=actor, **fields
    )


def _operator(operator_id: UUID) -> ActorRef:
    """The named operator, as the key store knows them."""

    async def find() -> OperatorIdentity | None:
        async with ApiKeyStore(Settings()) as keys:
            await keys.create_schema()
            return await keys.operator(operator_id)

    found = asyncio.run(find())
    if found is None:
        typer.echo(f"operator {operator_id} not found (see otc keys create-operator)", err=True)
        raise typer.Exit(2)
    return ActorRef.operator(found.id, found.name)


def _owner_of(order_id: UUID) -> UUID:
    orders = open_orders(Settings())
    try:
        order = orders.order(order_id)
    finally:
        orders.close()
    if order is None:
        typer.echo(f"order {order_id} not found", err=True)
        raise typer.Exit(2)
    return order.customer_id


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        typer.echo(f"not a decimal amount: {text!r}", err=True)
        raise typer.Exit(2) from None


@command_app.command("quote")
def quote(
    customer: Annotated[UUID, typer.Option(help="the customer asking")],
    source: Annotated[UUID, typer.Option(help="buy: EUR account; sell: wallet")],
    destination: Annotated[UUID, typer.Option(help="buy: wallet; sell: EUR account")],
    amount: Annotated[str, typer.Option(help="source amount, e.g. 1000.00")],
    side: Annotated[Side, typer.Option(help="buy or sell")] = Side.BUY,
    order: Annotated[UUID | None, typer.Option(help="the new order id (default: random)")] = None,
    key: Key = None,
    timeout: Timeout = 10.0,
) -> None:
    """RequestQuote: a new quoted order."""
    _send(
        _as_customer(
            c.RequestQuote,
            order or uuid.uuid4(),
            customer,
            key,
            side=side,
            source_id=source,
            destination_id=destination,
            source_amount=_amount(amount),
        ),
        timeout,
    )


@command_app.command("confirm")
def confirm(
    order: UUID,
    customer: Annotated[UUID, typer.Option(help="the customer confirming")],
    side: Annotated[Side, typer.Option(help="the quote's side")] = Side.BUY,
    max_slippage_bps: Annotated[int | None, typer.Option(help="refuse a worse final rate")] = None,
    key: Key = None,
    timeout: Timeout = 10.0,
) -> None:
    """ConfirmQuote: the quote becomes an order."""
    _send(
        _as_customer(
            c.ConfirmQuote, order, customer, key, side=side, max_slippage_bps=max_slippage_bps
        ),
        timeout,
    )


@command_app.command("cancel")
def cancel(
    order: UUID,
    customer: Annotated[UUID, typer.Option(help="the customer cancelling")],
    key: Key = None,
    timeout: Timeout = 10.0,
) -> None:
    """CancelOrder: only a quoted or requoted order."""
    _send(_as_customer(c.CancelOrder, order, customer, key), timeout)


@command_app.command("requote")
def requote(
    order: UUID,
    customer: Annotated[UUID, typer.Option(help="the customer asking")],
    key: Key = None,
    timeout: Timeout = 10.0,
) -> None:
    """Requote: a fresh rate and expiry."""
    _send(_as_customer(c.Requote, order, customer, key), timeout)


@command_app.command("approve")
def approve(
    order: UUID,
    *,
    operator: Operator,
    rate: Annotated[str | None, typer.Option(help="final rate (default: the live rate)")] = None,
    override: Annotated[
        bool, typer.Option("--override", help="approve a rate outside the price collar")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="why the collar is overridden")] = None,
    timeout: Timeout = 10.0,
) -> None:
    """ApproveOrder: set the final rate (within the collar of the live rate) and release."""
    actor = _operator(operator)
    final = None if rate is None else _amount(rate)
    command = _as_operator(
        c.ApproveOrder, order, actor, rate=final, override=override, reason=reason
    )
    _send(command, timeout)


@command_app.command("reject")
def reject(
    order: UUID,
    *,
    operator: Operator,
    reason: Annotated[str, typer.Option(help="why")] = "rejected by operator",
    timeout: Timeout = 10.0,
) -> None:
    """RejectOrder: a buy is refunded; a sell moved nothing."""
    _send(_as_operator(c.RejectOrder, order, _operator(operator), reason=reason), timeout)


@command_app.command("retry-payout")
def retry_payout(order: UUID, operator: Operator, timeout: Timeout = 10.0) -> None:
    """RetryPayout: try a refused payout again (a new attempt)."""
    _send(_as_operator(c.RetryPayout, order, _operator(operator)), timeout)


@command_app.command("retry-refund")
def retry_refund(order: UUID, operator: Operator, timeout: Timeout = 10.0) -> None:
    """RetryRefund: try a refused refund again (a new attempt)."""
    _send(_as_operator(c.RetryRefund, order, _operator(operator)), timeout)
