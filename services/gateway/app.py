"""The REST API of seed 000 (DESIGN.md section 6): authenticate, check scope and ownership,
validate, turn a request into a command, wait for the engine's reply, answer. Reads come from
the `order_list` read model; a write waits (briefly) until that model has caught up with it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Discriminator, Tag
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain import commands as c
from domain.commands import ActorRef
from domain.errors import DomainError, ErrorCode
from domain.idempotency import parse_key
from domain.money import parse_amount
from domain.order import Order, Side, Status
from domain.resources import is_eligible_account, is_eligible_wallet
from domain.views import OpsFacts, OrderView
from services.adapters.ports import UpstreamError, WalletBalancePort
from services.auth.principal import Principal, Scope
from services.command_client import CommandClient, CommandTimeoutError
from services.contracts import ReplyEnvelope, event_data
from services.gateway.asyncapi import router as asyncapi
from services.gateway.problems import (
    PROBLEM_JSON,
    ApiError,
    from_domain,
    on_api_error,
    on_http_error,
    on_validation_error,
    problem_response,
    render_problem,
    responses,
)
from services.gateway.readiness import Report
from services.gateway.schemas import (
    Account,
    AccountList,
    ApproveRequest,
    BuyQuoteRequest,
    ConfirmRequest,
    Health,
    History,
    HistoryEntry,
    OpsOrderPage,
    OrderPage,
    RejectRequest,
    SellQuoteRequest,
    Wallet,
    WalletBalance,
    WalletList,
)
from services.http_errors import ErrorGuard
from services.resilience import Outages
from services.resources.port import ResourceDirectory

IDEMPOTENT_REPLAYED = "Idempotent-Replayed"
READ_YOUR_WRITES_SECONDS = 2.0
PENDING_QUEUE = (Status.PENDING_APPROVAL,)


class OrderRow(Protocol):
    @property
    def customer_id(self) -> UUID: ...

    @property
    def view(self) -> OrderView: ...


class OrderReadModel(Protocol):
    """What the gateway reads: the `order_list` view (synchronous: called in a thread)."""

    def get(self, order_id: UUID) -> OrderRow | None: ...

    def list_for_customer(
        self, customer_id: UUID, *, page: int, limit: int
    ) -> tuple[list[Any], int]: ...

    def list_by_status(self, statuses: Any, *, page: int, limit: int) -> tuple[list[Any], int]: ...  # noqa: ANN401

    def list_needing_attention(self, *, page: int, limit: int) -> tuple[list[Any], int]: ...

    def max_tracking_id(self, application_name: str) -> int | None: ...


class Authenticator(Protocol):
    async def api_key(self, key: str) -> Principal | None: ...

    def bearer(self, token: str) -> Principal | None: ...


@dataclass
class Gateway:
    """The gateway's collaborators, built by its composition root."""

    resources: ResourceDirectory
    auth: Authenticator
    read_model: OrderReadModel
    commands: CommandClient
    balances: WalletBalancePort
    history: Callable[[UUID], Awaitable[list[Order.Event]]]
    reply_timeout: float = 10.0
    dual_control_eur: Decimal = Decimal("100000.00")
    readiness: Callable[[], Awaitable[Report]] | None = None
    retry_after_seconds: int = 5
    in_flight: set[tuple[UUID, UUID]] = field(default_factory=set)


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


GatewayDep = Annotated[Gateway, Depends(gateway)]


# ---------------------------------------------------------------------------------- auth


API_KEY = APIKeyHeader(name="x-api-key", auto_error=False, description="an API key")
BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="a session JWT")


async def authenticate(
    gw: GatewayDep,
    api_key: Annotated[str | None, Security(API_KEY)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Principal:
    principal: Principal | None = None
    if api_key:
        principal = await gw.auth.api_key(api_key)
    elif bearer is not None:
        principal = gw.auth.bearer(bearer.credentials)
    if principal is None:
        raise ApiError(
            ErrorCode.UNAUTHENTICATED,
            "valid credentials are required: an x-api-key header or a Bearer JWT",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def scope(required: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has(required):
            raise ApiError(ErrorCode.INSUFFICIENT_SCOPE, f"this call needs the scope {required}")
        return principal

    return check


Reader = Annotated[Principal, Depends(scope(Scope.READ))]
Writer = Annotated[Principal, Depends(scope(Scope.WRITE))]
Operator = Annotated[Principal, Depends(scope(Scope.OPERATE))]


# ---------------------------------------------------------------------------------- idempotency


def optional_key(idempotency_key: str | None) -> UUID | None:
    try:
        return parse_key(idempotency_key)
    except DomainError as error:
        raise ApiError(error.code, error.message) from None


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="a UUID v4; the same key replays the first answer"),
]


# ---------------------------------------------------------------------------------- commands


def customer_actor(principal: Principal) -> ActorRef:
    return ActorRef.customer(principal.customer_id)


def operator_actor(principal: Principal) -> ActorRef:
    """The named person behind an operator key or token (never the platform's id)."""
    if principal.operator is None:
        raise ApiError(ErrorCode.INSUFFICIENT_SCOPE, "these credentials name no operator")
    return ActorRef.operator(principal.operator.id, principal.operator.name)


def envelope_fields(
    order_id: UUID, customer_id: UUID, actor: ActorRef, key: UUID | None
) -> dict[str, Any]:
    return {
        "command_id": uuid.uuid4(),
        "order_id": order_id,
        "customer_id": customer_id,
        "actor": actor,
        "idempotency_key": key,
        "issued_at": datetime.now(UTC),
    }


async def run_command(gw: Gateway, command: c.Command, success: int) -> Response:
    """Send, wait for the reply, answer it; wait for the read model before answering a write."""
    flight = (command.customer_id, command.idempotency_key) if command.idempotency_key else None
    if flight is not None:
        if flight in gw.in_flight:
            raise ApiError(
                ErrorCode.IDEMPOTENCY_KEY_IN_USE, "a request with this Idempotency-Key is in flight"
            )
        gw.in_flight.add(flight)
    try:
        reply = await gw.commands.send(command, timeout=gw.reply_timeout)
    except CommandTimeoutError:
        raise ApiError(
            ErrorCode.COMMAND_TIMEOUT,
            "no answer in time; the command may still complete, and retrying with the same "
            "Idempotency-Key is safe",
        ) from None
    finally:
        if flight is not None:
            gw.in_flight.discard(flight)
    return await answer(gw, reply, success)


async def answer(gw: Gateway, reply: ReplyEnvelope, success: int) -> Response:
    headers = {IDEMPOTENT_REPLAYED: "true"} if reply.replayed else {}
    if not reply.ok:
        assert reply.error is not None  # noqa: S101 - a refused reply carries its error
        return problem_response(
            reply.error.status,
            reply.error.code.value,
            reply.error.message,
            field=reply.error.field,
            headers=headers,
        )
    await caught_up(gw, reply.position)
    return JSONResponse(reply.order, status_code=success, headers=headers)


async def caught_up(gw: Gateway, position: int | None) -> None:
    """Read-your-writes: wait a little for the read model to reach this write's position."""
    if position is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READ_YOUR_WRITES_SECONDS
    while loop.time() < deadline:
        reached = await asyncio.to_thread(gw.read_model.max_tracking_id, "Orders")
        if reached is not None and reached >= position:
            return
        await asyncio.sleep(0.02)


async def operator_envelope(
    gw: Gateway,
    order_id: UUID,
    principal: Principal,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """The envelope of an operator's command on any order (404 if there is none)."""
    key = optional_key(idempotency_key)
    row = await any_row(gw, order_id)
    return envelope_fields(order_id, row.customer_id, operator_actor(principal), key)


async def customer_envelope(
    gw: Gateway,
    order_id: UUID,
    principal: Principal,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """The envelope of a customer's command on one of their orders (404 for anyone else's)."""
    key = optional_key(idempotency_key)
    await owned_row(gw, order_id, principal)
    return envelope_fields(order_id, principal.customer_id, customer_actor(principal), key)


async def owned_row(gw: Gateway, order_id: UUID, principal: Principal) -> OrderRow:
    row = await asyncio.to_thread(gw.read_model.get, order_id)
    if row is None or row.customer_id != principal.customer_id:
        raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
    return row


async def any_row(gw: Gateway, order_id: UUID) -> OrderRow:
    row = await asyncio.to_thread(gw.read_model.get, order_id)
    if row is None:
        raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
    return row


def order_page(rows: list[Any], page: int, limit: int, total: int) -> dict[str, Any]:
    return {
        "data": [row.view.public_json() for row in rows],
        "page": page,
        "limit": limit,
        "total": total,
    }


def ops_order(row: Any, dual_control_eur: Decimal) -> dict[str, Any]:  # noqa: ANN401 - a read-model row
    """One order for operators: its public view and what the desk needs to decide on it."""
    view: OrderView = row.view
    ops: OpsFacts = row.ops
    eur_value = view.source_amount if view.side is Side.BUY else view.destination_amount
    pending = view.status is Status.PENDING_APPROVAL
    facts = {
        "approvals": [a.model_dump(mode="json", by_alias=True) for a in ops.approvals],
        "dualControl": eur_value >= dual_control_eur,
        "awaitingSecondApproval": pending and len(ops.approvals) == 1,
        "unresolved": None
        if ops.unresolved is None
        else ops.unresolved.model_dump(mode="json", by_alias=True),
        "failureReason": ops.failure_reason,
    }
    return {**view.public_json(), **{k: v for k, v in facts.items() if v is not None}}


def ops_page(gw: Gateway, rows: list[Any], page: int, limit: int, total: int) -> dict[str, Any]:
    return {
        "data": [ops_order(row, gw.dual_control_eur) for row in rows],
        "page": page,
        "limit": limit,
        "total": total,
    }


# ---------------------------------------------------------------------------------- customer routes

customer = APIRouter(prefix="/otc-exchanges", tags=["otc-exchanges"])
OrderId = Annotated[UUID, Path(description="the order id (equal to the quote id)")]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")]
Limit = Annotated[int, Query(ge=1, le=100, description="items per page, 1..100")]

QuoteBody = Annotated[
    Annotated[BuyQuoteRequest, Tag("buy")] | Annotated[SellQuoteRequest, Tag("sell")],
    Discriminator(
        lambda body: (
            (body.get("side") or "buy") if isinstance(body, dict) else getattr(body, "side", "buy")
        )
    ),
]


@customer.get("/accounts", response_model=AccountList, responses=responses())
async def list_accounts(principal: Reader, gw: GatewayDep) -> AccountList:
    """Your active EUR accounts: the source of a buy and the destination of a sell."""
    accounts = await gw.resources.accounts_of(principal.customer_id)
    return AccountList(
        data=[
            Account(
                id=a.id,
                name=a.name,
                currency=a.currency,
                status=a.status.value,
                iban_last4=a.iban_last4,
            )
            for a in accounts
            if is_eligible_account(a)
        ],
    )


@customer.get("/wallets", response_model=WalletList, responses=responses())
async def list_wallets(principal: Reader, gw: GatewayDep) -> WalletList:
    """Your non-treasury wallets with a USDC address: a buy's destination, a sell's source."""
    wallets = await gw.resources.wallets_of(principal.customer_id)
    return WalletList(
        data=[
            Wallet(id=w.id, label=w.label, network=w.network, usdc_address=w.usdc_address or "")
            for w in wallets
            if is_eligible_wallet(w)
        ],
    )


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
    wallet = (await gw.resources.wallets([wallet_id])).get(wallet_id)
    if (
        wallet is None
        or wallet.customer_id != principal.customer_id
        or not is_eligible_wallet(wallet)
    ):
        raise ApiError(ErrorCode.WALLET_NOT_FOUND, "wallet not found")
    assert wallet.usdc_address is not None  # noqa: S101 - eligible wallets have one
    try:
        balance = await gw.balances.usdc_balance(
            network=wallet.network, address=wallet.usdc_address
        )
    except UpstreamError:
        raise ApiError(
            ErrorCode.BALANCE_UNAVAILABLE, "the live balance could not be fetched"
        ) from None
    return WalletBalance(
        wallet_id=wallet.id,
        network=wallet.network,
        usdc_balance=str(balance.quantize(Decimal("0.000001"))),
    )


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
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    ErrorCode.COMMAND_TIMEOUT,
)


@customer.post(
    "/quote",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*QUOTE_ERRORS),
)
async def request_quote(
    body: QuoteBody,
    principal: Writer,
    gw: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A short-lived indicative quote; its quoteId is the new order's id."""
    key = optional_key(idempotency_key)
    if isinstance(body, BuyQuoteRequest):
        side, source, destination = Side.BUY, body.source_account_id, body.destination_wallet_id
    else:
        side, source, destination = Side.SELL, body.source_wallet_id, body.destination_account_id
    try:
        amount = parse_amount(body.source_amount, side.source_currency, field="sourceAmount")
    except DomainError as error:
        raise ApiError(error.code, error.message, field=error.field) from None
    command = c.RequestQuote(
        **envelope_fields(uuid.uuid4(), principal.customer_id, customer_actor(principal), key),
        side=side,
        source_id=source,
        destination_id=destination,
        source_amount=amount,
    )
    return await run_command(gw, command, 200)


CONFIRM_ERRORS = (
    ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    ErrorCode.QUOTE_EXPIRED,
    ErrorCode.ORDER_NOT_FOUND,
    ErrorCode.SIDE_MISMATCH,
    ErrorCode.INVALID_TRANSITION,
    ErrorCode.COMMAND_TIMEOUT,
)


@customer.post(
    "",
    status_code=201,
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*CONFIRM_ERRORS),
)
async def confirm_quote(
    body: ConfirmRequest,
    principal: Writer,
    gw: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Confirm a quote into an order. A buy debits your EUR now; a sell waits for approval."""
    if idempotency_key is None:
        raise ApiError(
            ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
            "POST /otc-exchanges needs an Idempotency-Key header",
        )
    key = optional_key(idempotency_key)
    command = c.ConfirmQuote(
        **envelope_fields(body.quote_id, principal.customer_id, customer_actor(principal), key),
        side=body.side,
        max_slippage_bps=body.max_slippage_bps,
    )
    return await run_command(gw, command, 201)


@customer.get("", response_model=OrderPage, response_model_exclude_none=True, responses=responses())
async def list_orders(
    principal: Reader, gw: GatewayDep, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Your orders, newest first."""
    rows, total = await asyncio.to_thread(
        gw.read_model.list_for_customer,
        principal.customer_id,
        page=page,
        limit=limit,
    )
    return order_page(rows, page, limit, total)


@customer.get(
    "/{order_id}",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(ErrorCode.ORDER_NOT_FOUND),
)
async def get_order(order_id: OrderId, principal: Reader, gw: GatewayDep) -> dict[str, Any]:
    """One of your orders."""
    return (await owned_row(gw, order_id, principal)).view.public_json()


ORDER_COMMAND_ERRORS = (
    ErrorCode.ORDER_NOT_FOUND,
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    ErrorCode.COMMAND_TIMEOUT,
)


@customer.post(
    "/{order_id}/cancel",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*ORDER_COMMAND_ERRORS, ErrorCode.NOT_CANCELLABLE),
)
async def cancel_order(
    order_id: OrderId,
    principal: Writer,
    gw: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Cancel a quoted or requoted order; anything further along is 409 NOT_CANCELLABLE."""
    envelope = await customer_envelope(gw, order_id, principal, idempotency_key)
    return await run_command(gw, c.CancelOrder(**envelope), 200)


@customer.post(
    "/{order_id}/requote",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(
        *ORDER_COMMAND_ERRORS, ErrorCode.INVALID_TRANSITION, ErrorCode.QUOTE_UNAVAILABLE
    ),
)
async def requote_order(
    order_id: OrderId,
    principal: Writer,
    gw: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A fresh rate and expiry for a quoted, requoted or expired order."""
    envelope = await customer_envelope(gw, order_id, principal, idempotency_key)
    return await run_command(gw, c.Requote(**envelope), 200)


# ---------------------------------------------------------------------------------- operator routes

ops = APIRouter(prefix="/ops/otc-exchanges", tags=["operations"])
OPS_ERRORS = (*ORDER_COMMAND_ERRORS, ErrorCode.INVALID_TRANSITION)


@ops.get("", response_model=OpsOrderPage, response_model_exclude_none=True, responses=responses())
async def pending_queue(
    _: Operator, gw: GatewayDep, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Orders waiting for an operator's decision, oldest first, with the approvals so far."""
    rows, total = await asyncio.to_thread(
        gw.read_model.list_by_status, PENDING_QUEUE, page=page, limit=limit
    )
    return ops_page(gw, rows, page, limit, total)


@ops.get(
    "/attention",
    response_model=OpsOrderPage,
    response_model_exclude_none=True,
    responses=responses(),
)
async def attention_queue(
    _: Operator, gw: GatewayDep, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Orders an operator must act on, oldest first: a refused payout or refund (retry it), or
    a movement whose outcome a worker could not learn (flagged; reconciled, never guessed)."""
    rows, total = await asyncio.to_thread(
        gw.read_model.list_needing_attention, page=page, limit=limit
    )
    return ops_page(gw, rows, page, limit, total)


@ops.post(
    "/{order_id}/approve",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(
        *OPS_ERRORS,
        ErrorCode.SLIPPAGE_EXCEEDED,
        ErrorCode.RATE_OUTSIDE_COLLAR,
        ErrorCode.SAME_APPROVER,
        ErrorCode.QUOTE_UNAVAILABLE,
    ),
)
async def approve_order(
    order_id: OrderId,
    principal: Operator,
    gw: GatewayDep,
    body: ApproveRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Approve at the live provider rate, or at an explicit rate within the price collar of it
    (`override` with a `reason` to go beyond). An order under dual control needs a second,
    different operator: the first approval is recorded and the order stays pending."""
    request = body or ApproveRequest()
    command = c.ApproveOrder(
        **await operator_envelope(gw, order_id, principal, idempotency_key),
        rate=None if request.rate is None else Decimal(request.rate),
        override=request.override,
        reason=request.reason,
    )
    return await run_command(gw, command, 200)


@ops.post(
    "/{order_id}/reject",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*OPS_ERRORS),
)
async def reject_order(
    order_id: OrderId,
    principal: Operator,
    gw: GatewayDep,
    body: RejectRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Reject: a buy's EUR is refunded; a sell moved nothing."""
    reason = RejectRequest().reason if body is None else body.reason
    envelope = await operator_envelope(gw, order_id, principal, idempotency_key)
    return await run_command(gw, c.RejectOrder(**envelope, reason=reason), 200)


@ops.post(
    "/{order_id}/retry-payout",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*OPS_ERRORS),
)
async def retry_payout(
    order_id: OrderId,
    principal: Operator,
    gw: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Try a permanently failed payout again (a new attempt, a new reference)."""
    envelope = await operator_envelope(gw, order_id, principal, idempotency_key)
    return await run_command(gw, c.RetryPayout(**envelope), 200)


@ops.post(
    "/{order_id}/retry-refund",
    response_model=OrderView,
    response_model_exclude_none=True,
    responses=responses(*OPS_ERRORS),
)
async def retry_refund(
    order_id: OrderId,
    principal: Operator,
    gw: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Try a refused refund again (a new attempt, a new reference)."""
    envelope = await operator_envelope(gw, order_id, principal, idempotency_key)
    return await run_command(gw, c.RetryRefund(**envelope), 200)


@ops.get(
    "/{order_id}/history", response_model=History, responses=responses(ErrorCode.ORDER_NOT_FOUND)
)
async def order_history(order_id: OrderId, _: Operator, gw: GatewayDep) -> History:
    """Every event of the order with who caused it (server-side references: `otc audit`)."""
    events = await gw.history(order_id)
    if not events:
        raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
    return History(order_id=order_id, events=[history_entry(event) for event in events])


def history_entry(event: Order.Event) -> HistoryEntry:
    """One event for the operators' API: who, when, what; never the server-side references
    (provider quote ids, bank references, transaction hashes: `otc audit history` shows them)."""
    data = event_data(event, server_side=False)
    for name in ("actorKind", "actorId", "actorName", "commandId"):
        data.pop(name, None)
    return HistoryEntry(
        version=event.originator_version,
        type=type(event).__name__,
        occurred_at=event.timestamp.isoformat(),
        actor={"kind": event.actor_kind, "id": event.actor_id, "name": event.actor_name},
        command_id=str(event.command_id),
        data=data,
    )


# ---------------------------------------------------------------------------------- app

health = APIRouter(tags=["health"])


@health.get("/health", response_model=Health)
async def liveness() -> Health:
    """The process answers."""
    return Health(status="ok")


@health.get(
    "/ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "a dependency is down or a lag too long"}},
)
async def readiness(gw: GatewayDep) -> Response:
    """PostgreSQL and Kafka answer, and the relay, the projector and every consumer group are
    within their lag limits (the lags are in the answer either way)."""
    report = Report(ready=True) if gw.readiness is None else await gw.readiness()
    body = Health(
        status="ok" if report.ready else "not ready", checks=report.checks, lags=report.lags
    )
    if report.ready:
        return JSONResponse(body.model_dump())
    return JSONResponse(
        body.model_dump(),
        status_code=503,
        headers={"Retry-After": str(gw.retry_after_seconds)},
    )


def create_app(
    lifespan: Callable[[FastAPI], Any] | None = None,
    *,
    retry_after_seconds: int = 5,
    outages: Outages | None = None,
) -> FastAPI:
    """The FastAPI app; `lifespan` sets `app.state.gateway` (services/gateway/__main__.py).
    Whatever no handler answers becomes a problem too (`services.http_errors.ErrorGuard`)."""
    from services.gateway.webhooks import router as webhook_endpoints  # noqa: PLC0415 - it imports this module

    app = FastAPI(
        title="OTC Exchanges API",
        version="1.0.0",
        description="EUR <-> USDC over-the-counter exchange: quotes, orders, operator approval.",
        lifespan=lifespan,
    )
    app.include_router(customer)
    app.include_router(ops)
    app.include_router(webhook_endpoints)
    app.include_router(health)
    app.include_router(asyncapi)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_middleware(
        ErrorGuard,
        render=render_problem,
        retry_after_seconds=retry_after_seconds,
        outages=outages,
    )
    return app


@asynccontextmanager
async def with_gateway(app: FastAPI, gw: Gateway) -> AsyncIterator[None]:
    app.state.gateway = gw
    yield


__all__ = ["PROBLEM_JSON", "Gateway", "create_app", "from_domain", "with_gateway"]
