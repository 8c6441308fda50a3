"""What the bank and chain sandboxes share: transfers idempotent on the client's reference, their
statement, and the routes over them.

`Ledger.transfer` is the whole booking rule of both: the same reference again replays the
booked transfer (or is 409 `REFERENCE_CONFLICT` with other fields), a reference refused once
with a 422 is refused the same way for ever, and otherwise the sandbox books it (`_book`). Calls
with the same reference are serialised by an advisory lock on it, taken before the balances'
row locks (always in this order, so no two transfers wait on each other).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime, and
# those of the routes `ledger_routes` makes name its locals.

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services import advisory_locks
from services.local.sandbox.common import (
    REFUSAL_STATUS,
    CamelModel,
    Connection,
    Database,
    SandboxError,
    json_body,
    refused_before,
    remember_refusal,
)

STATEMENT_PAGE = 1000

Transfer = TypeVar("Transfer", bound=CamelModel)
"""A sandbox's transfer request; it has a `reference`."""


class Ledger(ABC, Generic[Transfer]):
    schema: str
    transfers_lock: str
    """Its advisory-lock namespace (services/advisory_locks.py)."""
    conflict_field: str
    """The name of the sandbox's own transfer id in a 409's body (bankReference, ...)."""
    id_column: str
    """Its column."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def transfer(self, request: Transfer) -> tuple[dict[str, Any], bool]:
        """The transfer booked for the reference and whether this call booked it."""
        request = await self._canonical(request)
        reference: str = getattr(request, "reference")  # noqa: B009 - every Transfer has one
        async with self._db.transaction() as conn:
            lock = (self.transfers_lock, reference)
            await conn.execute(advisory_locks.SANDBOX_TRANSFER, lock)
            found = await self._find(conn, reference)
            if found is not None:
                if not self._same(found, request):
                    raise SandboxError(
                        409,
                        "REFERENCE_CONFLICT",
                        "this reference was used for a different transfer",
                        **{self.conflict_field: found[self.id_column]},
                    )
                return found, False
            earlier = await refused_before(conn, self.schema, reference)
            if earlier is not None:
                raise earlier
            try:
                return await self._book(conn, request), True
            except SandboxError as error:
                if error.status != REFUSAL_STATUS:
                    raise
                await remember_refusal(conn, self.schema, reference, error)
                refusal = error
        raise refusal

    @abstractmethod
    async def _canonical(self, request: Transfer) -> Transfer:
        """The request checked and in canonical form (400s for what can never be booked)."""

    @abstractmethod
    def _same(self, booked: Mapping[str, Any], request: Transfer) -> bool:
        """Whether a booked transfer is the one this request asks for."""

    @abstractmethod
    async def _book(self, conn: Connection, request: Transfer) -> dict[str, Any]:
        """Book it: lock the balances, check them, insert the transfer, move the money."""

    @abstractmethod
    async def totals(self) -> dict[str, object]: ...

    async def _find(self, conn: Connection, reference: str) -> dict[str, Any] | None:
        cursor = await conn.execute(
            f"SELECT * FROM {self.schema}.transfers WHERE reference = %s",  # noqa: S608 - our schema
            (reference,),
        )
        return await cursor.fetchone()

    async def find_transfer(self, reference: str) -> dict[str, Any] | None:
        async with self._db.connection() as conn:
            return await self._find(conn, reference)

    async def statement(self, after: int, limit: int) -> list[dict[str, Any]]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                f"SELECT * FROM {self.schema}.transfers WHERE sequence > %s"  # noqa: S608
                " ORDER BY sequence LIMIT %s",
                (after, limit),
            )
            return await cursor.fetchall()


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
