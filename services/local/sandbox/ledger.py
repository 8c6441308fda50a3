"""What the bank and chain sandboxes share: transfers idempotent on the client's reference and
their statement, in the sandbox's schema (the routes over them: `ledger_routes.py`).

`Ledger.transfer` is the whole booking rule of both: the same reference again replays the
booked transfer (or is 409 `REFERENCE_CONFLICT` with other fields), a reference refused once
with a 422 is refused the same way for ever (the schema's `refusals` table), and otherwise the
sandbox books it (`_book`). Calls with the same reference are serialised by an advisory lock on
it, taken before the balances' row locks (always in this order, so no two transfers wait on each
other).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from services import advisory_locks
from services.local.sandbox.common import CamelModel, SandboxError
from services.local.sandbox.database import Connection, Database

Transfer = TypeVar("Transfer", bound=CamelModel)
"""A sandbox's transfer request; it has a `reference`."""


REFUSAL_STATUS = 422


def refusals_ddl(schema: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {schema}.refusals (
        reference text PRIMARY KEY,
        code text NOT NULL,
        message text NOT NULL,
        refused_at timestamptz NOT NULL DEFAULT now()
    )"""


async def refused_before(conn: Connection, schema: str, reference: str) -> SandboxError | None:
    """A permanent refusal already given for this reference: a repeat gets the same answer, so
    that a transfer refused once can never go through later under the same reference."""
    cursor = await conn.execute(
        f"SELECT code, message FROM {schema}.refusals WHERE reference = %s",  # noqa: S608 - our schema
        (reference,),
    )
    found = await cursor.fetchone()
    if found is None:
        return None
    return SandboxError(REFUSAL_STATUS, found["code"], found["message"])


async def remember_refusal(
    conn: Connection, schema: str, reference: str, error: SandboxError
) -> None:
    await conn.execute(
        f"INSERT INTO {schema}.refusals (reference, code, message) VALUES (%s, %s, %s)"  # noqa: S608
        " ON CONFLICT (reference) DO NOTHING",
        (reference, error.code, error.message),
    )


def funding_reused() -> SandboxError:
    """A funding's reference used again with another account, wallet or amount."""
    message = "this reference was used for a different funding"
    return SandboxError(409, "REFERENCE_CONFLICT", message)


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
