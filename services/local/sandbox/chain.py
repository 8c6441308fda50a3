"""The chain sandbox: USDC balances per (network, address), transfers idempotent on the client's
reference that return a transaction hash, and live balance reads.

Routes (bodies camelCase, amounts decimal strings with 6 places, JSON numbers accepted too):

- `POST /transfers {reference, network, fromAddress, toAddress, amount}`: 201 with the transfer
  `{transactionHash, reference, network, fromAddress, toAddress, amount, currency, status,
  confirmedAt}`; the same reference again: 200 with the original (same hash), nothing moves; the
  same reference with other fields: 409 `REFERENCE_CONFLICT`. 422 `INSUFFICIENT_FUNDS` (nothing
  moves), 400 `UNSUPPORTED_NETWORK`, `INVALID_ADDRESS`, `SAME_ADDRESS`, `INVALID_AMOUNT`,
  `VALIDATION_ERROR`.
- `GET /transfers/{reference}`: the transfer, or 404 `TRANSFER_NOT_FOUND`.
- `GET /transfers?after=N&limit=M`: every transfer in confirmation order, each with its
  `sequence`; `next` is the `after` of the following page (null at the end).
- `GET /balances/{network}/{address}`: `{network, address, currency, balance}` (0 for an address
  never seen, as on a real chain).
- `POST /admin/wallets/{network}/{address}/fund {amount, reference?}`: credits the address
  (`amount` may be 0); with a `reference`, funding is idempotent on it.
- `GET /admin/totals`: `{currency, balance, funded, networks: [{network, wallets, balance,
  funded}]}`: money is conserved when each network's balances sum to its fundings.

Addresses: ethereum and polygon `0x` + 40 hex digits (kept lowercase), solana base58 (32 to 44
characters); other configured networks accept 16 to 128 letters and digits.

This module is the HTTP side: the routes and the wire form of a transfer. The wallets, fundings and
transfers themselves are `chain_ledger.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from services.local.sandbox.app import create_sandbox_app
from services.local.sandbox.chain_ledger import (
    DDL,
    PLACES,
    SCHEMA,
    Chain,
    ChainConfig,
    FundingRequest,
    TransferRequest,
)
from services.local.sandbox.common import json_body, money, timestamp
from services.local.sandbox.database import Database
from services.local.sandbox.ledger_routes import ledger_routes
from services.settings import Settings


def transfer_view(row: Mapping[str, Any]) -> dict[str, object]:
    return {
        "transactionHash": row["transaction_hash"],
        "reference": row["reference"],
        "network": row["network"],
        "fromAddress": row["from_address"],
        "toAddress": row["to_address"],
        "amount": money(row["amount"], PLACES),
        "currency": "USDC",
        "status": "CONFIRMED",
        "confirmedAt": timestamp(row["confirmed_at"]),
        "sequence": row["sequence"],
    }


def _chain(request: Request) -> Chain:
    chain: Chain = request.app.state.chain
    return chain


ChainDep = Annotated[Chain, Depends(_chain)]
router = ledger_routes(_chain, TransferRequest, transfer_view)


@router.get("/balances/{network}/{address}")
async def read_balance(network: str, address: str, chain: ChainDep) -> dict[str, object]:
    return await chain.balance(network, address)


@router.post("/admin/wallets/{network}/{address}/fund")
async def fund_wallet(
    chain: ChainDep,
    network: str,
    address: str,
    body: Annotated[FundingRequest, Depends(json_body(FundingRequest))],
) -> dict[str, object]:
    return await chain.fund(network, address, body)


def create_app(settings: Settings, config: ChainConfig | None = None) -> FastAPI:
    database = Database(settings, SCHEMA, DDL)
    app = create_sandbox_app("Chain sandbox (USDC)", database)
    app.state.chain = Chain(database, config or ChainConfig())
    app.include_router(router)
    return app
