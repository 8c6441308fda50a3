"""The customer's routes of seed 000 under `/otc-exchanges` (plus requote): each parses, calls
one read (services/gateway/queries.py) or sends one command (services/gateway/commands.py), and
answers. Above each command's route: the error codes it can answer (its OpenAPI `responses`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Response

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from domain.money import parse_amount
from domain.order import Side
from domain.views import OrderView
from services.gateway.auth import Reader
from services.gateway.commands import ORDER_COMMAND_ERRORS, SEND_ERRORS, ByCustomer, order_command
from services.gateway.headers import located
from services.gateway.params import Limit, OrderId, Page
from services.gateway.ports import GatewayDep
from services.gateway.problems import ApiError, responses
from services.gateway.queries import (
    eligible_accounts,
    eligible_wallets,
    live_balance,
    orders_of,
    owned_row,
)
from services.gateway.schemas import (
    AccountList,
    BuyQuoteRequest,
    ConfirmRequest,
    OrderPage,
    QuoteBody,
    SellQuoteRequest,
    WalletBalance,
    WalletList,
)

customer = APIRouter(prefix="/otc-exchanges", tags=["otc-exchanges"])


@customer.get("/accounts", response_model=AccountList)
async def list_accounts(principal: Reader, gw: GatewayDep) -> AccountList:
    """Your active EUR accounts: the source of a buy and the destination of a sell."""
    return await eligible_accounts(gw, principal)


@customer.get("/wallets", response_model=WalletList)
async def list_wallets(principal: Reader, gw: GatewayDep) -> WalletList:
    """Your non-treasury wallets with a USDC address: a buy's destination, a sell's source."""
    return await eligible_wallets(gw, principal)


@customer.get(
    "/wallets/{wallet_id}/balance",
    response_model=WalletBalance,
    responses=responses(ErrorCode.WALLET_NOT_FOUND, ErrorCode.BALANCE_UNAVAILABLE),
)
async def wallet_balance(
    wallet_id: Annotated[UUID, Path(description="one of your wallets")],
    principal: Reader,
    gw: GatewayDep,
) -> WalletBalance:
    """The live USDC balance of one of your wallets on its network."""
    return await live_balance(gw, principal, wallet_id)


QUOTE_ERRORS = (
    ErrorCode.SOURCE_NOT_FOUND,
    ErrorCode.SOURCE_WRONG_CURRENCY,
    ErrorCode.SOURCE_INACTIVE,
    ErrorCode.DESTINATION_NOT_FOUND,
    ErrorCode.DESTINATION_NO_USDC_ADDRESS,
    ErrorCode.SOURCE_WALLET_NOT_FOUND,
    ErrorCode.SOURCE_WALLET_NO_USDC,
    ErrorCode.SOURCE_WALLET_INSUFFICIENT,
    ErrorCode.DESTINATION_ACCOUNT_NOT_FOUND,
    ErrorCode.DESTINATION_ACCOUNT_WRONG_CURRENCY,
    ErrorCode.DESTINATION_ACCOUNT_INACTIVE,
    ErrorCode.AMOUNT_BELOW_MINIMUM,
    ErrorCode.AMOUNT_ABOVE_MAXIMUM,
    ErrorCode.QUOTE_UNAVAILABLE,
    *SEND_ERRORS,
)


def quote_terms(body: BuyQuoteRequest | SellQuoteRequest) -> dict[str, Any]:
    """The side, the legs and the amount of a quote request (422 for an amount the source's
    currency cannot hold)."""
    if isinstance(body, BuyQuoteRequest):
        side, source, destination = Side.BUY, body.source_account_id, body.destination_wallet_id
    else:
        side, source, destination = Side.SELL, body.source_wallet_id, body.destination_account_id
    try:
        amount = parse_amount(body.source_amount, side.source_currency, field="sourceAmount")
    except DomainError as error:
        raise ApiError(error.code, error.message, field=error.field) from None
    return {
        "side": side,
        "source_id": source,
        "destination_id": destination,
        "source_amount": amount,
    }


@order_command(customer, "/quote", *QUOTE_ERRORS)
async def request_quote(body: QuoteBody, sender: ByCustomer) -> Response:
    """A short-lived indicative quote; its quoteId is the new order's id."""
    envelope = sender.envelope(uuid.uuid4())  # a malformed key is refused before the amount
    return await sender.send(c.RequestQuote(**envelope, **quote_terms(body)), 200)


CONFIRM_ERRORS = (
    ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
    ErrorCode.QUOTE_EXPIRED,
    ErrorCode.ORDER_NOT_FOUND,
    ErrorCode.SIDE_MISMATCH,
    ErrorCode.INVALID_TRANSITION,
    *SEND_ERRORS,
)


@customer.post(
    "",
    status_code=201,
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*CONFIRM_ERRORS),
)
async def confirm_quote(body: ConfirmRequest, sender: ByCustomer) -> Response:
    """Confirm a quote into an order. A buy debits your EUR now; a sell waits for approval."""
    sender.require_key("POST /otc-exchanges")
    envelope = sender.envelope(body.quote_id)
    command = c.ConfirmQuote(**envelope, side=body.side, max_slippage_bps=body.max_slippage_bps)
    order = customer.url_path_for("get_order", order_id=str(body.quote_id))
    return located(await sender.send(command, 201), order)


@customer.get("", response_model=OrderPage, response_model_exclude_none=True)
async def list_orders(
    principal: Reader, gw: GatewayDep, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Your orders, newest first."""
    return await orders_of(gw, principal, page, limit)


@customer.get(
    "/{order_id}",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(ErrorCode.ORDER_NOT_FOUND),
)
async def get_order(order_id: OrderId, principal: Reader, gw: GatewayDep) -> dict[str, Any]:
    """One of your orders."""
    return (await owned_row(gw, order_id, principal)).view.public_json()


CANCEL_ERRORS = (*ORDER_COMMAND_ERRORS, ErrorCode.NOT_CANCELLABLE)


@order_command(customer, "/{order_id}/cancel", *CANCEL_ERRORS)
async def cancel_order(order_id: OrderId, sender: ByCustomer) -> Response:
    """Cancel a quoted or requoted order; anything further along is 409 NOT_CANCELLABLE."""
    return await sender.on_order(order_id, c.CancelOrder)


REQUOTE_ERRORS = (*ORDER_COMMAND_ERRORS, ErrorCode.INVALID_TRANSITION, ErrorCode.QUOTE_UNAVAILABLE)


@order_command(customer, "/{order_id}/requote", *REQUOTE_ERRORS)
async def requote_order(order_id: OrderId, sender: ByCustomer) -> Response:
    """A fresh rate and expiry for a quoted, requoted or expired order."""
    return await sender.on_order(order_id, c.Requote)
