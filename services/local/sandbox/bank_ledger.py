"""The core-banking sandbox's ledger in PostgreSQL, schema `sandbox_bank`: EUR accounts with their
balances, fundings and transfers (the booking rule they share with the chain's: ledger.py). The
routes over it: bank.py.

A transfer is one transaction: both accounts are locked (`FOR UPDATE`, in id order, so two
transfers never deadlock), the balance checked, the transfer row and both balances written.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import Field

from services import advisory_locks
from services.local.sandbox.common import (
    REFERENCE_PATTERN,
    CamelModel,
    SandboxError,
    checked_amount,
    money,
)
from services.local.sandbox.database import Connection
from services.local.sandbox.ledger import Ledger, funding_reused, refusals_ddl

SCHEMA = "sandbox_bank"
PLACES = 2

DDL = (
    "CREATE SCHEMA IF NOT EXISTS sandbox_bank",
    refusals_ddl("sandbox_bank"),
    """CREATE TABLE IF NOT EXISTS sandbox_bank.accounts (
        id uuid PRIMARY KEY,
        balance numeric(17, 2) NOT NULL CHECK (balance >= 0),
        opened_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS sandbox_bank.fundings (
        id bigserial PRIMARY KEY,
        reference text UNIQUE,
        account_id uuid NOT NULL REFERENCES sandbox_bank.accounts (id),
        amount numeric(17, 2) NOT NULL CHECK (amount >= 0),
        funded_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS sandbox_bank.transfers (
        bank_reference text PRIMARY KEY,
        reference text NOT NULL UNIQUE,
        from_account uuid NOT NULL REFERENCES sandbox_bank.accounts (id),
        to_account uuid NOT NULL REFERENCES sandbox_bank.accounts (id),
        amount numeric(17, 2) NOT NULL CHECK (amount > 0),
        booked_at timestamptz NOT NULL DEFAULT now(),
        CHECK (from_account <> to_account)
    )""",
    "ALTER TABLE sandbox_bank.accounts ADD COLUMN IF NOT EXISTS closed_at timestamptz",
    "ALTER TABLE sandbox_bank.transfers ADD COLUMN IF NOT EXISTS sequence bigserial",
    "CREATE UNIQUE INDEX IF NOT EXISTS transfers_sequence ON sandbox_bank.transfers (sequence)",
)


class TransferRequest(CamelModel):
    reference: str = Field(pattern=REFERENCE_PATTERN, description="the client's reference")
    from_account: UUID
    to_account: UUID
    amount: Decimal
    currency: Literal["EUR"] = "EUR"


class FundingRequest(CamelModel):
    amount: Decimal
    reference: str | None = Field(default=None, pattern=REFERENCE_PATTERN)


class Bank(Ledger[TransferRequest]):
    schema = SCHEMA
    transfers_lock = advisory_locks.BANK_TRANSFERS
    conflict_field = "bankReference"
    id_column = "bank_reference"

    async def _canonical(self, request: TransferRequest) -> TransferRequest:
        amount = checked_amount(request.amount, PLACES, field="amount")
        if request.from_account == request.to_account:
            raise SandboxError(400, "SAME_ACCOUNT", "fromAccount and toAccount must differ")
        return request.model_copy(update={"amount": amount})

    def _same(self, booked: Mapping[str, Any], request: TransferRequest) -> bool:
        return (booked["from_account"], booked["to_account"], booked["amount"]) == (
            request.from_account,
            request.to_account,
            request.amount,
        )

    async def _book(self, conn: Connection, request: TransferRequest) -> dict[str, Any]:
        amount = request.amount
        cursor = await conn.execute(
            "SELECT id, balance, closed_at FROM sandbox_bank.accounts WHERE id = ANY(%s)"
            " ORDER BY id FOR UPDATE",
            ([request.from_account, request.to_account],),
        )
        found = await cursor.fetchall()
        balances = {row["id"]: row["balance"] for row in found}
        for account in (request.from_account, request.to_account):
            if account not in balances:
                raise SandboxError(404, "ACCOUNT_NOT_FOUND", f"no account {account}")
        if any(row["closed_at"] is not None for row in found):
            raise SandboxError(422, "ACCOUNT_CLOSED", "an account of this transfer is closed")
        if balances[request.from_account] < amount:
            raise SandboxError(422, "INSUFFICIENT_FUNDS", "the balance does not cover the amount")
        cursor = await conn.execute(
            "INSERT INTO sandbox_bank.transfers"
            " (bank_reference, reference, from_account, to_account, amount)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING *",
            (
                f"BNK{uuid4().hex[:20].upper()}",
                request.reference,
                request.from_account,
                request.to_account,
                amount,
            ),
        )
        booked = await cursor.fetchone()
        if booked is None:
            raise RuntimeError("INSERT ... RETURNING returned no row")
        await conn.execute(
            "UPDATE sandbox_bank.accounts SET balance = balance - %s WHERE id = %s",
            (amount, request.from_account),
        )
        await conn.execute(
            "UPDATE sandbox_bank.accounts SET balance = balance + %s WHERE id = %s",
            (amount, request.to_account),
        )
        return booked

    async def set_closed(self, account_id: UUID, *, closed: bool) -> dict[str, Any]:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE sandbox_bank.accounts SET closed_at = CASE WHEN %s THEN now() END"
                " WHERE id = %s",
                (closed, account_id),
            )
        return await self.account(account_id)

    async def account(self, account_id: UUID) -> dict[str, Any]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, balance, closed_at FROM sandbox_bank.accounts WHERE id = %s",
                (account_id,),
            )
            row = await cursor.fetchone()
        if row is None:
            raise SandboxError(404, "ACCOUNT_NOT_FOUND", f"no account {account_id}")
        return row

    async def fund(self, account_id: UUID, request: FundingRequest) -> dict[str, Any]:
        amount = checked_amount(request.amount, PLACES, field="amount", allow_zero=True)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO sandbox_bank.accounts (id, balance) VALUES (%s, 0)"
                " ON CONFLICT (id) DO NOTHING",
                (account_id,),
            )
            cursor = await conn.execute(
                "INSERT INTO sandbox_bank.fundings (reference, account_id, amount)"
                " VALUES (%s, %s, %s) ON CONFLICT (reference) DO NOTHING RETURNING id",
                (request.reference, account_id, amount),
            )
            if await cursor.fetchone() is not None:
                await conn.execute(
                    "UPDATE sandbox_bank.accounts SET balance = balance + %s WHERE id = %s",
                    (amount, account_id),
                )
            else:
                await self._check_same_funding(conn, account_id, request.reference, amount)
        return await self.account(account_id)

    async def _check_same_funding(
        self,
        conn: Connection,
        account_id: UUID,
        reference: str | None,
        amount: Decimal,
    ) -> None:
        cursor = await conn.execute(
            "SELECT account_id, amount FROM sandbox_bank.fundings WHERE reference = %s",
            (reference,),
        )
        found = await cursor.fetchone()
        if found is None or (found["account_id"], found["amount"]) != (account_id, amount):
            raise funding_reused()

    async def totals(self) -> dict[str, object]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT (SELECT count(*) FROM sandbox_bank.accounts) AS accounts,"
                " (SELECT coalesce(sum(balance), 0) FROM sandbox_bank.accounts) AS balance,"
                " (SELECT coalesce(sum(amount), 0) FROM sandbox_bank.fundings) AS funded",
            )
            row = await cursor.fetchone()
        if row is None:
            raise RuntimeError("an aggregate query returned no row")
        return {
            "currency": "EUR",
            "accounts": row["accounts"],
            "balance": money(row["balance"], PLACES),
            "funded": money(row["funded"], PLACES),
        }
