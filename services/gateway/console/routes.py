"""The console's pages and forms under `/console`. Every page needs a signed-in operator
(services/gateway/console/sessions.py); every POST carries the session's CSRF token. A decision
(approve, reject, retry) is one command sent as `POST /ops/otc-exchanges/{id}/...` sends it,
by the named operator, under an `Idempotency-Key` made with the form, so a form sent twice is
answered once (services/gateway/commands.py)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from domain import commands as c
from domain.errors import HTTP_STATUS, ErrorCode
from domain.order import Status
from services.auth.principal import Principal
from services.gateway.commands import OperatorSender, caught_up, exchange
from services.gateway.console import pages
from services.gateway.console.sessions import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    Session,
    same,
)
from services.gateway.ports import Gateway, GatewayDep
from services.gateway.problems import ApiError
from services.gateway.schemas import ApproveRequest

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
PATH = "/console"
MAX_FORM_BYTES = 16 * 1024
CSRF_REFUSED = "CSRF_TOKEN_INVALID"
"""The code a POST without this session's CSRF token is refused with (403)."""
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

console = APIRouter(prefix=PATH, include_in_schema=False)


class SignInRequiredError(Exception):
    """No session, an expired one, or a key no longer valid: back to the sign-in page."""


class FormRefusedError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Signed:
    token: str
    session: Session
    principal: Principal


async def signed_in(request: Request, gw: GatewayDep) -> Signed:
    token = request.cookies.get(SESSION_COOKIE)
    session = gw.console.sessions.get(token)
    if token is None or session is None:
        raise SignInRequiredError
    principal = await gw.auth.api_key(session.key)
    if principal is None or not principal.is_operator:
        gw.console.sessions.close(token)
        raise SignInRequiredError
    return Signed(token, session, principal)


SignedIn = Annotated[Signed, Depends(signed_in)]


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    signed: Signed | None = None,
    **context: object,
) -> HTMLResponse:
    """A page of the console, with the operator's name and CSRF token when signed in."""
    if signed is not None:
        context |= {"operator": signed.session.operator_name, "csrf": signed.session.csrf}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(HEADERS)
    return response


def see_other(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(HEADERS)
    return response


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormRefusedError(413, "PAYLOAD_TOO_LARGE", "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {name: values[-1] for name, values in fields.items()}


async def checked_form(request: Request, signed: Signed) -> dict[str, str]:
    form = await form_of(request)
    if not same(form.get("csrf"), signed.session.csrf):
        raise FormRefusedError(
            403,
            CSRF_REFUSED,
            "the form did not carry this session's security token; reload the page and try again",
        )
    return form


def set_cookie(response: Response, request: Request, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# -- signing in and out ------------------------------------------------------------------


@console.get("")
async def home() -> Response:
    return see_other(f"{PATH}/queue")


@console.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", title="Sign in", sign_in_token=token)
    set_cookie(response, request, SIGN_IN_COOKIE, token, SIGN_IN_SECONDS)
    return response


@console.post("/sign-in")
async def sign_in(request: Request, gw: GatewayDep) -> Response:
    form = await form_of(request)

    def refused(status: int, message: str) -> Response:
        token = secrets.token_urlsafe(32)
        response = page(
            request,
            "sign_in.html",
            status=status,
            title="Sign in",
            sign_in_token=token,
            error=message,
        )
        set_cookie(response, request, SIGN_IN_COOKIE, token, SIGN_IN_SECONDS)
        return response

    if not same(form.get("csrf"), request.cookies.get(SIGN_IN_COOKIE)):
        return refused(403, f"The sign-in form had expired; try again ({CSRF_REFUSED}).")
    key = form.get("key", "").strip()
    principal = await gw.auth.api_key(key) if key else None
    if principal is None:
        return refused(401, f"That key was not accepted ({ErrorCode.UNAUTHENTICATED}).")
    if not principal.is_operator or principal.operator is None:
        return refused(
            403,
            "That is not an operator's key: customer keys cannot sign in to the console "
            f"({ErrorCode.INSUFFICIENT_SCOPE}).",
        )
    token, _ = gw.console.sessions.open(key, principal.operator.name)
    response = see_other(f"{PATH}/queue")
    set_cookie(response, request, SESSION_COOKIE, token, int(gw.console.sessions.ttl_seconds))
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


@console.post("/sign-out")
async def sign_out(request: Request, gw: GatewayDep, signed: SignedIn) -> Response:
    await checked_form(request, signed)
    gw.console.sessions.close(signed.token)
    response = see_other(f"{PATH}/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


# -- the queues and the orders -----------------------------------------------------------


@console.get("/queue")
async def queue(request: Request, gw: GatewayDep, signed: SignedIn) -> Response:
    lines, total = await pages.pending_queue(gw)
    return page(
        request,
        "queue.html",
        signed=signed,
        title="Approvals",
        nav="queue",
        lines=lines,
        total=total,
        limit=pages.QUEUE_LIMIT,
    )


@console.get("/queue/rows")
async def queue_rows(request: Request, gw: GatewayDep, signed: SignedIn) -> Response:
    """The queue's rows alone, for the page's script to refresh them in place."""
    lines, total = await pages.pending_queue(gw)
    return page(request, "queue_rows.html", signed=signed, lines=lines, total=total)


@console.get("/attention")
async def attention(request: Request, gw: GatewayDep, signed: SignedIn) -> Response:
    lines, total = await pages.attention_queue(gw)
    return page(
        request,
        "attention.html",
        signed=signed,
        title="Needing attention",
        nav="attention",
        lines=lines,
        total=total,
        retry_action=pages.retry_action,
    )


@console.get("/system")
async def system(request: Request, gw: GatewayDep, signed: SignedIn) -> Response:
    found = await pages.system_page(gw)
    return page(request, "system.html", signed=signed, title="System", nav="system", found=found)


def parsed_uuid(text: str | None) -> UUID | None:
    try:
        return UUID(text.strip()) if text and text.strip() else None
    except ValueError:
        return None


@dataclass(frozen=True)
class OrderQuery:
    """The search form's fields, as typed (checked below, so that a typo is said, not a 422)."""

    id: str | None = None
    customer: str | None = None
    status: str | None = None


@console.get("/orders")
async def orders(
    request: Request, gw: GatewayDep, signed: SignedIn, query: Annotated[OrderQuery, Depends()]
) -> Response:
    problems = []
    order_id, customer_id = parsed_uuid(query.id), parsed_uuid(query.customer)
    if query.id and order_id is None:
        problems.append("The order id is not a UUID.")
    if query.customer and customer_id is None:
        problems.append("The customer id is not a UUID.")
    wanted = Status(query.status) if query.status in set(Status) else None
    searched = bool(order_id or customer_id or wanted)
    lines = (
        await pages.search(gw, order_id=order_id, customer_id=customer_id, status=wanted)
        if searched and not problems
        else []
    )
    return page(
        request,
        "orders.html",
        signed=signed,
        title="Orders",
        nav="orders",
        lines=lines,
        searched=searched,
        problems=problems,
        query={
            "id": query.id or "",
            "customer": query.customer or "",
            "status": query.status or "",
        },
        statuses=list(Status),
    )


@console.get("/orders/{order_id}")
async def order(request: Request, gw: GatewayDep, signed: SignedIn, order_id: UUID) -> Response:
    found = await pages.order_page(gw, order_id)
    if found is None:
        return page(
            request,
            "missing.html",
            status=404,
            signed=signed,
            title="Order not found",
            order_id=order_id,
        )
    return page(
        request,
        "order.html",
        signed=signed,
        title=f"Order {order_id}",
        nav="orders",
        found=found,
        retry_action=pages.retry_action(found.line),
    )


# -- decisions ---------------------------------------------------------------------------


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


@console.get("/orders/{order_id}/{name}")
async def confirm_page(
    request: Request, gw: GatewayDep, signed: SignedIn, order_id: UUID, name: str
) -> Response:
    action = ACTIONS.get(name)
    line = await pages.one_line(gw, order_id, live=name == "approve")
    if action is None or line is None:
        return page(
            request,
            "missing.html",
            status=404,
            signed=signed,
            title="Order not found",
            order_id=order_id,
        )
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


@console.post("/orders/{order_id}/{name}")
async def decision(
    request: Request, gw: GatewayDep, signed: SignedIn, order_id: UUID, name: str
) -> Response:
    form = await checked_form(request, signed)
    if name not in ACTIONS:
        return page(
            request,
            "missing.html",
            status=404,
            signed=signed,
            title="Order not found",
            order_id=order_id,
        )
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


# -- wiring ------------------------------------------------------------------------------


async def on_sign_in_required(_request: Request, _: Exception) -> Response:
    return see_other(f"{PATH}/sign-in")


async def on_form_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, FormRefusedError)  # noqa: S101 - registered for it
    return page(
        request,
        "refused.html",
        status=error.status,
        title="Refused",
        code=error.code,
        message=error.message,
    )


def install(app: FastAPI) -> None:
    """The console's routes, its static files and its two answers that are not pages."""
    app.include_router(console)
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInRequiredError, on_sign_in_required)
    app.add_exception_handler(FormRefusedError, on_form_refused)
