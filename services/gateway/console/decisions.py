"""The decisions: approve, reject, retry a payout or a refund. Each is confirmed on a page of
its own, then sent as one command as `POST /ops/otc-exchanges/{id}/...` sends it, by the named
operator, under an `Idempotency-Key` made with the form, so a form sent twice is answered once
(services/gateway/commands.py); the answer is shown in words with its code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from domain import commands as c
from domain.errors import HTTP_STATUS, ErrorCode
from services.gateway.commands import OperatorSender, caught_up, exchange
from services.gateway.console import pages
from services.gateway.console.signing import SignedIn, checked_form
from services.gateway.console.web import PATH, FormRefusedError, Signed, missing, page
from services.gateway.ports import Gateway, GatewayDep
from services.gateway.problems import ApiError
from services.gateway.schemas import ApproveRequest

decisions = APIRouter(prefix=PATH, include_in_schema=False)


@dataclass(frozen=True)
class Action:
    verb: str
    done: str
    command: type[c.Command]


ACTIONS = {
    "approve": Action("Approve", "Approved", c.ApproveOrder),
    "reject": Action("Reject", "Rejected", c.RejectOrder),
    "retry-payout": Action("Retry the payout of", "Payout retried", c.RetryPayout),
    "retry-refund": Action("Retry the refund of", "Refund retried", c.RetryRefund),
}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int = 200
    code: str | None = None
    message: str | None = None
    order: dict[str, Any] | None = None

    @classmethod
    def refused(cls, status: int, code: str, message: str) -> Outcome:
        return cls(ok=False, status=status, code=code, message=message)


def payload_of(name: str, form: dict[str, str]) -> dict[str, Any]:
    """The command's fields from the form; FormRefusedError (422) for what cannot be sent."""
    reason = form.get("reason", "").strip() or None
    if name == "reject":
        if reason is None:
            raise FormRefusedError(422, ErrorCode.VALIDATION_ERROR, "a rejection needs a reason")
        return {"reason": reason}
    if name != "approve":
        return {}
    if form.get("rateChoice") != "explicit":
        return {}
    rate = form.get("rate", "").strip() or None
    if rate is None or reason is None:
        raise FormRefusedError(
            422, ErrorCode.VALIDATION_ERROR, "an explicit rate needs the rate and a reason"
        )
    try:
        request = ApproveRequest(rate=rate, override=form.get("override") == "on", reason=reason)
    except ValidationError as error:
        words = "; ".join(e["msg"] for e in error.errors())
        raise FormRefusedError(422, ErrorCode.VALIDATION_ERROR, words) from None
    return {"rate": request.rate, "override": request.override, "reason": request.reason}


async def decide(
    gw: Gateway, signed: Signed, order_id: UUID, name: str, form: dict[str, str]
) -> Outcome:
    action = ACTIONS[name]
    sender = OperatorSender(gw, signed.principal, form.get("idempotencyKey") or None)
    try:
        payload = payload_of(name, form)
        envelope = await sender.order_envelope(order_id)
        answered = await exchange(gw, action.command(**envelope, **payload))
    except FormRefusedError as refusal:
        return Outcome.refused(refusal.status, refusal.code, refusal.message)
    except ApiError as error:
        return Outcome.refused(HTTP_STATUS[error.code], error.code.value, error.detail)
    reply = answered.reply
    if not reply.ok:
        assert reply.error is not None  # noqa: S101 - a refused reply carries its error
        return Outcome.refused(reply.error.status, reply.error.code.value, reply.error.message)
    await caught_up(gw, reply.position)
    return Outcome(ok=True, order=reply.order)


@decisions.get("/orders/{order_id}/{name}")
async def confirm_page(
    request: Request, gw: GatewayDep, signed: SignedIn, order_id: UUID, name: str
) -> Response:
    action = ACTIONS.get(name)
    line = await pages.one_line(gw, order_id, live=name == "approve")
    if action is None or line is None:
        return missing(request, signed, order_id)
    return page(
        request,
        "confirm.html",
        signed=signed,
        title=f"{action.verb} this order?",
        nav="queue",
        line=line,
        name=name,
        action=action,
        idempotency_key=uuid.uuid4(),
    )


@decisions.post("/orders/{order_id}/{name}")
async def decision(
    request: Request, gw: GatewayDep, signed: SignedIn, order_id: UUID, name: str
) -> Response:
    form = await checked_form(request, signed)
    if name not in ACTIONS:
        return missing(request, signed, order_id)
    outcome = await decide(gw, signed, order_id, name, form)
    action = ACTIONS[name]
    return page(
        request,
        "result.html",
        status=outcome.status,
        signed=signed,
        title=action.done if outcome.ok else f"Not done: {action.verb.lower()} the order",
        nav="queue",
        order_id=order_id,
        outcome=outcome,
    )
