"""The core-banking sandbox: EUR accounts (customers' and the treasury's, identified by our account
UUIDs) with balances, and transfers between them idempotent on the client's reference.

Routes (bodies camelCase, amounts decimal strings with 2 places, JSON numbers accepted too):

- `POST /transfers {reference, fromAccount, toAccount, amount, currency?}`: 201 with the transfer
  `{bankReference, reference, fromAccount, toAccount, amount, currency, status, bookedAt}`; the same
  reference again: 200 with the original transfer (same `bankReference`), nothing moves; the same
  reference with other fields: 409 `REFERENCE_CONFLICT`. 422 `INSUFFICIENT_FUNDS` (nothing moves),
  404 `ACCOUNT_NOT_FOUND`, 400 `SAME_ACCOUNT`, `INVALID_AMOUNT`, `VALIDATION_ERROR`.
- `GET /transfers/{reference}`: the transfer, or 404 `TRANSFER_NOT_FOUND` (to learn the outcome of
  a transfer whose answer was lost or unreadable).
- `GET /transfers?after=N&limit=M`: the statement, every transfer in booking order, each with its
  `sequence`; `next` is the `after` of the following page (null at the end).
- 422 `ACCOUNT_CLOSED` when either account is closed (nothing moves).
- `POST /admin/accounts/{id}/close` and `/reopen`: close or reopen an account.
- `GET /accounts/{id}`: `{id, currency, balance}`, or 404 `ACCOUNT_NOT_FOUND`.
- `POST /admin/accounts/{id}/fund {amount, reference?}`: opens the account if needed and credits
  it (`amount` may be 0 to only open it); with a `reference`, funding is idempotent on it.
- `GET /admin/totals`: `{currency, accounts, balance, funded}`: money is conserved when the sum of
  the balances equals the sum of the fundings.

This module is the HTTP side: the routes and the wire form of transfers and accounts. The accounts
and transfers themselves are `bank_ledger.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Request

from services.local.sandbox.app import create_sandbox_app
from services.local.sandbox.bank_ledger import (
    DDL,
    PLACES,
    SCHEMA,
    Bank,
    FundingRequest,
    TransferRequest,
)
from services.local.sandbox.common import json_body, money, timestamp
from services.local.sandbox.database import Database
from services.local.sandbox.ledger_routes import ledger_routes
from services.settings import Settings


def transfer_view(row: Mapping[str, Any]) -> dict[str, object]:
    return {
        "bankReference": row["bank_reference"],
        "reference": row["reference"],
        "fromAccount": str(row["from_account"]),
        "toAccount": str(row["to_account"]),
        "amount": money(row["amount"], PLACES),
        "currency": "EUR",
        "status": "BOOKED",
        "bookedAt": timestamp(row["booked_at"]),
        "sequence": row["sequence"],
    }


def account_view(row: Mapping[str, Any]) -> dict[str, object]:
    return {
        "id": str(row["id"]),
        "currency": "EUR",
        "balance": money(row["balance"], PLACES),
        "status": "CLOSED" if row["closed_at"] is not None else "OPEN",
    }


def _bank(request: Request) -> Bank:
    bank: Bank = request.app.state.bank
    return bank


BankDep = Annotated[Bank, Depends(_bank)]
router = ledger_routes(_bank, TransferRequest, transfer_view)


@router.get("/accounts/{account_id}")
async def read_account(account_id: UUID, bank: BankDep) -> dict[str, object]:
    return account_view(await bank.account(account_id))


@router.post("/admin/accounts/{account_id}/fund")
async def fund_account(
    bank: BankDep,
    account_id: UUID,
    body: Annotated[FundingRequest, Depends(json_body(FundingRequest))],
) -> dict[str, object]:
    return account_view(await bank.fund(account_id, body))


@router.post("/admin/accounts/{account_id}/close")
async def close_account(bank: BankDep, account_id: UUID) -> dict[str, object]:
    return account_view(await bank.set_closed(account_id, closed=True))


@router.post("/admin/accounts/{account_id}/reopen")
async def reopen_account(bank: BankDep, account_id: UUID) -> dict[str, object]:
    return account_view(await bank.set_closed(account_id, closed=False))


def create_app(settings: Settings) -> FastAPI:
    database = Database(settings, SCHEMA, DDL)
    app = create_sandbox_app("Core banking sandbox (EUR)", database)
    app.state.bank = Bank(database)
    app.include_router(router)
    return app
