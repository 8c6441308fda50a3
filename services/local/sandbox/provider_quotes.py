"""The liquidity provider sandbox's book in PostgreSQL, schema `sandbox_provider`: quotes priced
off a moving market (pricing.py), their execution and settlement, and the bearer tokens with
their scopes (stored as SHA-256 hashes, never the tokens). The routes over it: provider.py."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from pydantic import Field

from services.local.sandbox.common import (
    CamelModel,
    SandboxError,
    checked_amount,
    timestamp,
    utc_now,
)
from services.local.sandbox.database import Connection, Database
from services.local.sandbox.pricing import (
    DEFAULT_CURRENCIES,
    CurrencySpec,
    FeePolicy,
    MidPrices,
    client_rate,
    quote_amounts,
)

SCHEMA = "sandbox_provider"
DUPLICATE_CODE = "DUPLICATE_CURRENCY_EXCHANGE_QUOTE"

DDL = (
    "CREATE SCHEMA IF NOT EXISTS sandbox_provider",
    """CREATE TABLE IF NOT EXISTS sandbox_provider.tokens (
        token_sha256 text PRIMARY KEY,
        scopes text[] NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS sandbox_provider.quotes (
        id uuid PRIMARY KEY,
        idempotency_key uuid UNIQUE,
        created timestamptz NOT NULL,
        valid_until timestamptz NOT NULL,
        fee_policy text NOT NULL,
        source_currency text NOT NULL,
        source_amount numeric NOT NULL CHECK (source_amount > 0),
        target_currency text NOT NULL,
        target_amount numeric NOT NULL CHECK (target_amount > 0),
        fee_amount numeric NOT NULL CHECK (fee_amount >= 0),
        rate numeric NOT NULL CHECK (rate > 0),
        state text NOT NULL CHECK (state IN ('NEW', 'PENDING', 'COMPLETED', 'FAILED')),
        executed_at timestamptz,
        completed timestamptz
    )""",
)


@dataclass(frozen=True)
class ProviderConfig:
    currencies: Mapping[str, CurrencySpec] = field(default_factory=lambda: DEFAULT_CURRENCIES)
    seed: int = 4
    volatility_scale: Decimal = Decimal(1)
    spread_bps: Decimal = Decimal(20)
    fee_bps: Decimal = Decimal(10)
    quote_ttl_seconds: float = 30.0
    settlement_seconds: float = 0.0
    clock: Callable[[], datetime] = utc_now


class AmountIn(CamelModel):
    amount: Decimal = Field(description="currency amount in decimal format")
    currency: str = Field(description="must match sell or buy")
    fee_policy: FeePolicy = Field(default=FeePolicy.EXCLUSIVE)


class QuoteRequest(CamelModel):
    sell: str = Field(description="currency to sell")
    buy: str = Field(description="currency to buy")
    amount: AmountIn


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Quotes:
    """The provider's book of quotes and tokens in PostgreSQL, and its moving market."""

    def __init__(self, database: Database, config: ProviderConfig) -> None:
        self._db = database
        self._config = config
        self._market = MidPrices(
            config.currencies,
            seed=config.seed,
            volatility_scale=config.volatility_scale,
        )
        self._tokens: dict[str, frozenset[str]] = {}
        """Scopes by token hash, of the tokens seen (never the tokens themselves)."""

    async def register_token(self, token: str, scopes: list[str]) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "INSERT INTO sandbox_provider.tokens (token_sha256, scopes) VALUES (%s, %s)"
                " ON CONFLICT (token_sha256) DO UPDATE SET scopes = EXCLUDED.scopes",
                (token_hash(token), scopes),
            )
        self._tokens[token_hash(token)] = frozenset(scopes)

    async def scopes_of(self, token: str) -> frozenset[str] | None:
        """A token's scopes: from memory once seen (this process is the only one registering
        tokens for its schema), from the table for one registered by an earlier run."""
        digest = token_hash(token)
        known = self._tokens.get(digest)
        if known is not None:
            return known
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT scopes FROM sandbox_provider.tokens WHERE token_sha256 = %s", (digest,)
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        self._tokens[digest] = found = frozenset(row["scopes"])
        return found

    async def create(self, request: QuoteRequest, idempotency_key: UUID | None) -> dict[str, Any]:
        """One round trip for a new quote: the insert itself finds a key seen before."""
        try:
            row = self._price(request)
        except SandboxError:
            if idempotency_key is not None:  # a duplicate is 409 whatever the body
                await self._refuse_duplicate(idempotency_key)
            raise
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                """INSERT INTO sandbox_provider.quotes (id, idempotency_key, created, valid_until,
                    fee_policy, source_currency, source_amount, target_currency, target_amount,
                    fee_amount, rate, state)
                VALUES (%(id)s, %(key)s, %(created)s, %(valid_until)s, %(fee_policy)s,
                    %(source_currency)s, %(source_amount)s, %(target_currency)s,
                    %(target_amount)s, %(fee_amount)s, %(rate)s, 'NEW')
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING *""",
                {**row, "key": idempotency_key},
            )
            created = await cursor.fetchone()
        if created is not None:
            return created
        if idempotency_key is not None:  # the key was seen before
            await self._refuse_duplicate(idempotency_key)
        raise RuntimeError("the quote was neither inserted nor a duplicate")

    async def _refuse_duplicate(self, idempotency_key: UUID) -> None:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT id FROM sandbox_provider.quotes WHERE idempotency_key = %s",
                (idempotency_key,),
            )
            original = await cursor.fetchone()
        if original is not None:
            raise SandboxError(
                409,
                DUPLICATE_CODE,
                "a quote was already created with this idempotency-key",
                currencyExchangeQuoteId=str(original["id"]),
            )

    def _price(self, request: QuoteRequest) -> dict[str, Any]:
        sell, buy = self._currency(request.sell, "sell"), self._currency(request.buy, "buy")
        if sell == buy:
            raise SandboxError(400, "SAME_CURRENCY", "sell and buy must differ", field="buy")
        given = request.amount
        if given.currency not in {sell, buy}:
            raise SandboxError(
                400,
                "AMOUNT_CURRENCY_MISMATCH",
                "amount.currency must match either sell or buy",
                field="amount.currency",
            )
        specs = self._config.currencies
        amount = checked_amount(given.amount, specs[given.currency].places, field="amount.amount")
        self._market.step()
        rate = client_rate(self._market.mid(sell, buy), self._config.spread_bps)
        amounts = quote_amounts(
            amount=amount,
            amount_is_sell=given.currency == sell,
            fee_policy=given.fee_policy,
            rate=rate,
            fee_bps=self._config.fee_bps,
            source_places=specs[sell].places,
            target_places=specs[buy].places,
        )
        if amounts.source <= 0 or amounts.target <= 0:
            raise SandboxError(400, "AMOUNT_TOO_SMALL", "the amount converts to nothing")
        created = self._config.clock()
        return {
            "id": uuid4(),
            "created": created,
            "valid_until": created + timedelta(seconds=self._config.quote_ttl_seconds),
            "fee_policy": str(given.fee_policy),
            "source_currency": sell,
            "source_amount": amounts.source,
            "target_currency": buy,
            "target_amount": amounts.target,
            "fee_amount": amounts.fee,
            "rate": rate,
        }

    def _currency(self, code: str, name: str) -> str:
        if code not in self._config.currencies:
            supported = ", ".join(self._config.currencies)
            raise SandboxError(
                400,
                "UNSUPPORTED_CURRENCY",
                f"{name} must be one of {supported}",
                field=name,
            )
        return code

    async def read(self, quote_id: UUID) -> dict[str, Any]:
        async with self._db.transaction() as conn:
            row = await self._locked(conn, quote_id)
            return await self._settle(conn, row)

    async def execute(self, quote_id: UUID) -> dict[str, Any]:
        now = self._config.clock()
        async with self._db.transaction() as conn:
            row = await self._settle(conn, await self._locked(conn, quote_id))
            lapsed = row["state"] == "NEW" and now >= row["valid_until"]
            expired = row["state"] == "FAILED" or lapsed
            if row["state"] == "NEW" and not expired:
                settled = self._config.settlement_seconds == 0
                state, completed = ("COMPLETED", now) if settled else ("PENDING", None)
                cursor = await conn.execute(
                    "UPDATE sandbox_provider.quotes"
                    " SET state = %s, executed_at = %s, completed = %s WHERE id = %s RETURNING *",
                    (state, now, completed, quote_id),
                )
                row = await cursor.fetchone() or row
            elif row["state"] == "NEW":
                await conn.execute(
                    "UPDATE sandbox_provider.quotes SET state = 'FAILED', executed_at = %s"
                    " WHERE id = %s",
                    (now, quote_id),
                )
        if expired:
            raise SandboxError(
                409,
                "QUOTE_EXPIRED",
                f"the quote was valid until {timestamp(row['valid_until'])}",
                currencyExchangeQuoteId=str(quote_id),
            )
        return row

    async def _locked(self, conn: Connection, quote_id: UUID) -> dict[str, Any]:
        cursor = await conn.execute(
            "SELECT * FROM sandbox_provider.quotes WHERE id = %s FOR UPDATE",
            (quote_id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise SandboxError(
                404,
                "CURRENCY_EXCHANGE_QUOTE_NOT_FOUND",
                "no currency exchange quote has this id",
            )
        return row

    async def _settle(self, conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
        """A PENDING quote whose settlement delay has passed becomes COMPLETED."""
        if row["state"] != "PENDING":
            return row
        completed = row["executed_at"] + timedelta(seconds=self._config.settlement_seconds)
        if self._config.clock() < completed:
            return row
        cursor = await conn.execute(
            "UPDATE sandbox_provider.quotes SET state = 'COMPLETED', completed = %s"
            " WHERE id = %s RETURNING *",
            (completed, row["id"]),
        )
        return await cursor.fetchone() or row
