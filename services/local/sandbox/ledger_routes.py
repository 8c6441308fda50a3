"""The routes of a sandbox's `Ledger` (ledger.py), the same in the bank and chain sandboxes: booking
a transfer, reading one back, the statement and the totals."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime, and
# those of the routes `ledger_routes` makes name its locals.

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services.local.sandbox.common import CamelModel, SandboxError, json_body
from services.local.sandbox.ledger import Ledger

STATEMENT_PAGE = 1000


def ledger_routes(
    ledger_of: Callable[[Request], Ledger[Any]],
    request_model: type[CamelModel],
    view: Callable[[Mapping[str, Any]], dict[str, object]],
) -> APIRouter:
    """`POST /transfers`, `GET /transfers` (the statement), `GET /transfers/{reference}` and
    `GET /admin/totals` of a sandbox whose ledger the app keeps (`ledger_of`)."""
    router = APIRouter()
    LedgerDep = Annotated[Ledger[Any], Depends(ledger_of)]  # noqa: N806 - a type alias

    @router.post("/transfers", status_code=201)
    async def create_transfer(
        ledger: LedgerDep, body: Annotated[CamelModel, Depends(json_body(request_model))]
    ) -> JSONResponse:
        row, booked_now = await ledger.transfer(body)
        return JSONResponse(view(row), status_code=201 if booked_now else 200)

    @router.get("/transfers")
    async def read_statement(
        ledger: LedgerDep,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=STATEMENT_PAGE)] = STATEMENT_PAGE,
    ) -> dict[str, object]:
        rows = await ledger.statement(after, limit)
        return {
            "data": [view(row) for row in rows],
            "next": rows[-1]["sequence"] if len(rows) == limit else None,
        }

    @router.get("/transfers/{reference}")
    async def read_transfer(reference: str, ledger: LedgerDep) -> dict[str, object]:
        row = await ledger.find_transfer(reference)
        if row is None:
            raise SandboxError(404, "TRANSFER_NOT_FOUND", "no transfer has this reference")
        return view(row)

    @router.get("/admin/totals")
    async def totals(ledger: LedgerDep) -> dict[str, object]:
        return await ledger.totals()

    return router
