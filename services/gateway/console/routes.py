"""The console's pages under `/console`: the queues, the orders, the system's findings, each
for a signed-in operator (services/gateway/console/signing.py); the decisions are in
decisions.py. `install` puts it all on the gateway's app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from domain.order import Status
from services.gateway.console import pages
from services.gateway.console.decisions import decisions
from services.gateway.console.signing import SignedIn, signing
from services.gateway.console.web import (
    HERE,
    PATH,
    FormRefusedError,
    SignInRequiredError,
    missing,
    page,
    see_other,
)
from services.gateway.ports import GatewayDep

console = APIRouter(prefix=PATH, include_in_schema=False)


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
        return missing(request, signed, order_id)
    return page(
        request,
        "order.html",
        signed=signed,
        title=f"Order {order_id}",
        nav="orders",
        found=found,
        retry_action=pages.retry_action(found.line),
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
    app.include_router(signing)
    app.include_router(console)
    app.include_router(decisions)
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInRequiredError, on_sign_in_required)
    app.add_exception_handler(FormRefusedError, on_form_refused)
