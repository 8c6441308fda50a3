"""The command round trip: a command's envelope (who, which order, the `Idempotency-Key`, when),
sent on `otc.commands`, the engine's reply awaited and answered, as it is or as a problem, with
`Idempotent-Replayed: true` when the engine replayed a stored answer. Before answering a write,
the gateway waits (briefly) until the read model has caught up with it: read-your-writes.

A route gets its `Sender` from FastAPI (`ByCustomer`, `ByOperator`) with nothing checked yet:
the key and the order are checked when the route builds its envelope, after FastAPI has
validated the body, so a malformed body is 422 before a malformed key's 400 or an unknown
order's 404."""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse

from domain import commands as c
from domain.commands import ActorRef
from domain.errors import DomainError, ErrorCode
from domain.idempotency import parse_key
from domain.views import OrderView
from services.auth.principal import Principal
from services.command_client import Answered, CommandTimeoutError
from services.contracts import ReplyEnvelope
from services.gateway.auth import Operator, Writer
from services.gateway.ports import Gateway, GatewayDep
from services.gateway.positions import position_reader
from services.gateway.problems import ApiError, problem_response, responses
from services.gateway.queries import owner_of
from services.logs import bind
from services.timings import server_timing

IDEMPOTENT_REPLAYED = "Idempotent-Replayed"
SERVER_TIMING = "Server-Timing"

SEND_ERRORS = (
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    ErrorCode.COMMAND_TIMEOUT,
)
"""What any command can meet on its way: a bad or reused key, one in flight, no reply in time."""
ORDER_COMMAND_ERRORS = (ErrorCode.ORDER_NOT_FOUND, *SEND_ERRORS)
"""What any command on an existing order can meet."""

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="a UUID v4; the same key replays the first answer"),
]


def optional_key(idempotency_key: str | None) -> UUID | None:
    try:
        return parse_key(idempotency_key)
    except DomainError as error:
        raise ApiError(error.code, error.message) from None


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


async def exchange(gw: Gateway, command: c.Command) -> Answered:
    """Send and wait for the reply: one request per `Idempotency-Key` in flight, no reply in
    time answered as COMMAND_TIMEOUT (the command may still complete)."""
    bind(order_id=command.order_id, command_id=command.command_id)  # the request's log lines
    flight = (command.customer_id, command.idempotency_key) if command.idempotency_key else None
    if flight is not None:
        if flight in gw.in_flight:
            raise ApiError(
                ErrorCode.IDEMPOTENCY_KEY_IN_USE, "a request with this Idempotency-Key is in flight"
            )
        gw.in_flight.add(flight)
    try:
        return await gw.commands.send_timed(command, timeout=gw.reply_timeout)
    except CommandTimeoutError:
        raise ApiError(
            ErrorCode.COMMAND_TIMEOUT,
            "no answer in time; the command may still complete, and retrying with the same "
            "Idempotency-Key is safe",
        ) from None
    finally:
        if flight is not None:
            gw.in_flight.discard(flight)


async def run_command(gw: Gateway, command: c.Command, success: int) -> Response:
    """Send, wait for the reply, answer it; wait for the read model before answering a write."""
    started = time.perf_counter()
    answered = await exchange(gw, command)
    stages = {"command": (time.perf_counter() - started) * 1000, **answered.stages()}
    return await answer(gw, answered.reply, success, stages)


async def answer(
    gw: Gateway, reply: ReplyEnvelope, success: int, stages: dict[str, float] | None = None
) -> Response:
    """The reply as the HTTP answer; `stages` (ms) go out as its `Server-Timing` header:
    `command` (sent until answered), the engine's and the Kafka legs' (services/timings.py)
    and `read` (waiting for the order list to show the write)."""
    headers = {IDEMPOTENT_REPLAYED: "true"} if reply.replayed else {}
    stages = dict(stages or {})
    if not reply.ok:
        assert reply.error is not None  # noqa: S101 - a refused reply carries its error
        return problem_response(
            reply.error.status,
            reply.error.code.value,
            reply.error.message,
            field=reply.error.field,
            headers={**headers, SERVER_TIMING: server_timing(stages)},
        )
    waited = time.perf_counter()
    await caught_up(gw, reply.position)
    stages["read"] = (time.perf_counter() - waited) * 1000
    headers[SERVER_TIMING] = server_timing(stages)
    return JSONResponse(reply.order, status_code=success, headers=headers)


async def caught_up(gw: Gateway, position: int | None) -> None:
    """Read-your-writes: wait a little for the read model to reach this write's position,
    woken by the projector's notification (services/gateway/positions.py), never polling."""
    if position is None:
        return
    await gw.positions.caught_up(
        position,
        within=gw.read_your_writes_seconds,
        read=position_reader(gw.read_model.max_tracking_id),
    )


@dataclass(frozen=True)
class Sender(ABC):
    """Who sends a command, with the raw `Idempotency-Key` header (see the module's docstring)."""

    gw: Gateway
    principal: Principal
    idempotency_key: str | None

    def key(self) -> UUID | None:
        return optional_key(self.idempotency_key)

    def require_key(self, route: str) -> None:
        if self.idempotency_key is None:
            raise ApiError(
                ErrorCode.IDEMPOTENCY_KEY_REQUIRED, f"{route} needs an Idempotency-Key header"
            )

    async def send(self, command: c.Command, success: int) -> Response:
        return await run_command(self.gw, command, success)

    async def on_order(
        self, order_id: UUID, command: Callable[..., c.Command], /, **payload: object
    ) -> Response:
        """A command on an order that exists, answered 200 with the order."""
        envelope = await self.order_envelope(order_id)
        return await self.send(command(**envelope, **payload), 200)

    @abstractmethod
    async def order_envelope(self, order_id: UUID) -> dict[str, Any]: ...


class CustomerSender(Sender):
    def envelope(self, order_id: UUID) -> dict[str, Any]:
        """The envelope of a command that opens or confirms an order."""
        key = self.key()
        return envelope_fields(order_id, self.principal.customer_id, self.actor(), key)

    async def order_envelope(self, order_id: UUID) -> dict[str, Any]:
        """On one of the customer's orders (404 for anyone else's)."""
        key = self.key()
        if await owner_of(self.gw, order_id) != self.principal.customer_id:
            raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        return envelope_fields(order_id, self.principal.customer_id, self.actor(), key)

    def actor(self) -> ActorRef:
        return ActorRef.customer(self.principal.customer_id)


class OperatorSender(Sender):
    async def order_envelope(self, order_id: UUID) -> dict[str, Any]:
        """On any order (404 if there is none), by the named person behind the credentials."""
        key = self.key()
        owner = await owner_of(self.gw, order_id)
        if owner is None:
            raise ApiError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        return envelope_fields(order_id, owner, self.actor(), key)

    def actor(self) -> ActorRef:
        """The named person behind an operator key or token (never the platform's id)."""
        operator = self.principal.operator
        if operator is None:
            raise ApiError(ErrorCode.INSUFFICIENT_SCOPE, "these credentials name no operator")
        return ActorRef.operator(operator.id, operator.name)


def by_customer(
    principal: Writer, gw: GatewayDep, idempotency_key: IdempotencyKey = None
) -> CustomerSender:
    return CustomerSender(gw, principal, idempotency_key)


def by_operator(
    principal: Operator, gw: GatewayDep, idempotency_key: IdempotencyKey = None
) -> OperatorSender:
    return OperatorSender(gw, principal, idempotency_key)


ByCustomer = Annotated[CustomerSender, Depends(by_customer)]
ByOperator = Annotated[OperatorSender, Depends(by_operator)]


def order_command(
    router: APIRouter, path: str, *errors: ErrorCode
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The decorator of a route that sends one command on an order: 200 with the order, or the
    problem of one of `errors`."""
    return router.post(
        path,
        response_model=OrderView,
        response_model_exclude_none=True,
        responses=responses(*errors),
    )
