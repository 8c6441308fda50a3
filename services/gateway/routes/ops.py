"""The operators' routes under `/ops/otc-exchanges` (scope `otc-exchanges:operate`): the
queues, an order's history, and the decisions on an order, each sent as one command by the
named operator (services/gateway/commands.py). Above each command's route: its error codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Response

from domain import commands as c
from domain.errors import ErrorCode
from services.gateway.auth import Operator
from services.gateway.commands import ORDER_COMMAND_ERRORS, ByOperator, order_command
from services.gateway.params import Limit, OrderId, Page
from services.gateway.ports import GatewayDep
from services.gateway.problems import responses
from services.gateway.queries import history_of, needing_attention, pending_approval
from services.gateway.schemas import ApproveRequest, History, OpsOrderPage, RejectRequest

ops = APIRouter(prefix="/ops/otc-exchanges", tags=["operations"])


@ops.get("", response_model=OpsOrderPage, response_model_exclude_none=True)
async def pending_queue(
    _: Operator, gw: GatewayDep, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Orders waiting for an operator's decision, oldest first, with the approvals so far."""
    return await pending_approval(gw, page, limit)


@ops.get(
    "/attention",
    response_model=OpsOrderPage,
    response_model_exclude_none=True,
)
async def attention_queue(
    _: Operator, gw: GatewayDep, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Orders an operator must act on, oldest first: a refused payout or refund (retry it), or
    a movement whose outcome a worker could not learn (flagged; reconciled, never guessed)."""
    return await needing_attention(gw, page, limit)


APPROVE_ERRORS = (
    *ORDER_COMMAND_ERRORS,
    ErrorCode.INVALID_TRANSITION,
    ErrorCode.SLIPPAGE_EXCEEDED,
    ErrorCode.RATE_OUTSIDE_COLLAR,
    ErrorCode.SAME_APPROVER,
    ErrorCode.QUOTE_UNAVAILABLE,
)


@order_command(ops, "/{order_id}/approve", *APPROVE_ERRORS)
async def approve_order(
    order_id: OrderId, sender: ByOperator, body: ApproveRequest | None = None
) -> Response:
    """Approve at the live provider rate, or at an explicit rate within the price collar of it
    (`override` with a `reason` to go beyond). An order under dual control needs a second,
    different operator: the first approval is recorded and the order stays pending."""
    request = body or ApproveRequest()
    rate = None if request.rate is None else Decimal(request.rate)
    return await sender.on_order(
        order_id, c.ApproveOrder, rate=rate, override=request.override, reason=request.reason
    )


REJECT_ERRORS = (*ORDER_COMMAND_ERRORS, ErrorCode.INVALID_TRANSITION)


@order_command(ops, "/{order_id}/reject", *REJECT_ERRORS)
async def reject_order(
    order_id: OrderId, sender: ByOperator, body: RejectRequest | None = None
) -> Response:
    """Reject: a buy's EUR is refunded; a sell moved nothing."""
    reason = RejectRequest().reason if body is None else body.reason
    return await sender.on_order(order_id, c.RejectOrder, reason=reason)


RETRY_PAYOUT_ERRORS = (*ORDER_COMMAND_ERRORS, ErrorCode.INVALID_TRANSITION)


@order_command(ops, "/{order_id}/retry-payout", *RETRY_PAYOUT_ERRORS)
async def retry_payout(order_id: OrderId, sender: ByOperator) -> Response:
    """Try a permanently failed payout again (a new attempt, a new reference)."""
    return await sender.on_order(order_id, c.RetryPayout)


RETRY_REFUND_ERRORS = (*ORDER_COMMAND_ERRORS, ErrorCode.INVALID_TRANSITION)


@order_command(ops, "/{order_id}/retry-refund", *RETRY_REFUND_ERRORS)
async def retry_refund(order_id: OrderId, sender: ByOperator) -> Response:
    """Try a refused refund again (a new attempt, a new reference)."""
    return await sender.on_order(order_id, c.RetryRefund)


@ops.get(
    "/{order_id}/history", response_model=History, responses=responses(ErrorCode.ORDER_NOT_FOUND)
)
async def order_history(order_id: OrderId, _: Operator, gw: GatewayDep) -> History:
    """Every event of the order with who caused it (server-side references: `otc audit`)."""
    return await history_of(gw, order_id)
