"""The liquidity provider sandbox: seed 004's currency exchange quotes, faithfully.

Routes (bodies camelCase, amounts decimal strings, times ISO 8601 UTC):

- `POST /currency-exchange-quotes` (scope `partner.currency-exchange-quote.create`), body
  `{sell, buy, amount: {amount, currency, feePolicy?}}`, optional header `idempotency-key` (a
  UUID). 200 with the quote. A key seen before: 409 `DUPLICATE_CURRENCY_EXCHANGE_QUOTE` with
  `currencyExchangeQuoteId`, the original quote's id (whatever the body).
- `GET /currency-exchange-quotes/{id}` (scope `partner.currency-exchange-quote.read` or `.create`).
- `POST /currency-exchange-quotes/{id}/execute` (scope `partner.currency-exchange.create`):
  before `validUntil` the quote becomes COMPLETED (PENDING first when a settlement delay is
  configured); after it, it becomes FAILED and the call is refused with 409 `QUOTE_EXPIRED`.
  Executing a COMPLETED or PENDING quote again returns it unchanged.
- `POST /admin/tokens {token, scopes}`: registers a bearer token (stored as a SHA-256 hash).

A quote: `{id, created, validUntil, source{amount,currency}, target{amount,currency},
fee{amount,currency}, conversionRate{amount, sourceCurrency, targetCurrency}, state, completed?}`.
Errors are `{"code", "message", ...}`: 400 `VALIDATION_ERROR`, `UNSUPPORTED_CURRENCY`,
`SAME_CURRENCY`, `AMOUNT_CURRENCY_MISMATCH`, `INVALID_AMOUNT`, `AMOUNT_TOO_SMALL`,
`INVALID_IDEMPOTENCY_KEY`; 401 `UNAUTHENTICATED`; 403 `INSUFFICIENT_SCOPE`; 404
`CURRENCY_EXCHANGE_QUOTE_NOT_FOUND`; 409 `DUPLICATE_CURRENCY_EXCHANGE_QUOTE`, `QUOTE_EXPIRED`.

This module is the HTTP side: the routes, bearer-token scopes and the quote's wire form. The book
of quotes and tokens is `provider_quotes.py`; pricing and rounding `pricing.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from pydantic import Field

from services.local.sandbox.app import create_sandbox_app
from services.local.sandbox.common import CamelModel, SandboxError, json_body, timestamp
from services.local.sandbox.database import Database
from services.local.sandbox.provider_quotes import (
    DDL,
    SCHEMA,
    ProviderConfig,
    QuoteRequest,
    Quotes,
)
from services.settings import Settings

CREATE_QUOTE_SCOPE = "partner.currency-exchange-quote.create"
READ_QUOTE_SCOPE = "partner.currency-exchange-quote.read"
EXECUTE_SCOPE = "partner.currency-exchange.create"


class TokenRegistration(CamelModel):
    token: str = Field(min_length=16, description="the bearer token; stored only as a hash")
    scopes: list[str]


def quote_view(row: Mapping[str, Any]) -> dict[str, object]:
    view: dict[str, object] = {
        "id": str(row["id"]),
        "created": timestamp(row["created"]),
        "validUntil": timestamp(row["valid_until"]),
        "source": {"amount": format(row["source_amount"], "f"), "currency": row["source_currency"]},
        "target": {"amount": format(row["target_amount"], "f"), "currency": row["target_currency"]},
        "fee": {"amount": format(row["fee_amount"], "f"), "currency": row["source_currency"]},
        "conversionRate": {
            "amount": format(row["rate"], "f"),
            "sourceCurrency": row["source_currency"],
            "targetCurrency": row["target_currency"],
        },
        "state": row["state"],
    }
    if row["completed"] is not None:
        view["completed"] = timestamp(row["completed"])
    return view


async def _quotes(request: Request) -> Quotes:
    quotes: Quotes = request.app.state.quotes
    return quotes


QuotesDep = Annotated[Quotes, Depends(_quotes)]


async def _bearer_scopes(
    quotes: QuotesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> frozenset[str]:
    scheme, _, token = (authorization or "").partition(" ")
    found = await quotes.scopes_of(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise SandboxError(
            401,
            "UNAUTHENTICATED",
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


Scopes = Annotated[frozenset[str], Depends(_bearer_scopes)]


def _requires(*accepted: str) -> Callable[[frozenset[str]], Awaitable[None]]:
    """A route dependency: 401 without a registered bearer token, 403 without one of `accepted`.
    Asynchronous, like every dependency here: FastAPI runs a plain function in a thread."""

    async def check(granted: Scopes) -> None:
        if granted.isdisjoint(accepted):
            raise SandboxError(
                403,
                "INSUFFICIENT_SCOPE",
                f"requires scope {' or '.join(accepted)}",
            )

    return check


def _idempotency_key(value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise SandboxError(
            400,
            "INVALID_IDEMPOTENCY_KEY",
            "idempotency-key must be a UUID",
            field="idempotency-key",
        ) from None


router = APIRouter()


@router.post("/currency-exchange-quotes", dependencies=[Depends(_requires(CREATE_QUOTE_SCOPE))])
async def create_quote(
    quotes: QuotesDep,
    body: Annotated[QuoteRequest, Depends(json_body(QuoteRequest))],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, object]:
    return quote_view(await quotes.create(body, _idempotency_key(idempotency_key)))


@router.get(
    "/currency-exchange-quotes/{quote_id}",
    dependencies=[Depends(_requires(READ_QUOTE_SCOPE, CREATE_QUOTE_SCOPE))],
)
async def read_quote(quotes: QuotesDep, quote_id: UUID) -> dict[str, object]:
    return quote_view(await quotes.read(quote_id))


@router.post(
    "/currency-exchange-quotes/{quote_id}/execute",
    dependencies=[Depends(_requires(EXECUTE_SCOPE))],
)
async def execute_quote(quotes: QuotesDep, quote_id: UUID) -> dict[str, object]:
    return quote_view(await quotes.execute(quote_id))


@router.post("/admin/tokens", status_code=201)
async def register_token(
    quotes: QuotesDep,
    body: Annotated[TokenRegistration, Depends(json_body(TokenRegistration))],
) -> dict[str, object]:
    await quotes.register_token(body.token, body.scopes)
    return {"scopes": body.scopes}


def create_app(settings: Settings, config: ProviderConfig | None = None) -> FastAPI:
    database = Database(settings, SCHEMA, DDL)
    app = create_sandbox_app("Liquidity provider sandbox (seed 004)", database)
    app.state.quotes = Quotes(database, config or ProviderConfig())
    app.include_router(router)
    return app
