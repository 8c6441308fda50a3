"""Plumbing shared by the sandboxes: errors as `{"code", "message"}` bodies (an unexpected one
too: 500 INTERNAL_ERROR, or 503 while the database is away), JSON bodies parsed with `Decimal`
numbers, money checks, timestamps, the connection pool and the app skeleton."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

from services import advisory_locks
from services.http_errors import ErrorGuard
from services.local.sandbox.faults import FaultInjector, install_faults
from services.pg import pool_options, register_pool
from services.resilience import Backoff, Dependency, Outages, is_outage
from services.settings import Settings
from services.vitals import vitals_running

Model = TypeVar("Model", bound=BaseModel)
Connection = AsyncConnection[DictRow]

# Amounts are below 10**15 in any currency, far above anything a test moves.
MAX_DIGITS_BEFORE_POINT = 15
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class SandboxError(Exception):
    """A refusal answered as `{"code", "message", **extra}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers)


class CamelModel(BaseModel):
    """A request body: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def json_body(model: type[Model]) -> Callable[[Request], Awaitable[Model]]:
    """A dependency parsing the body with JSON numbers as `Decimal` (never float), then `model`."""

    async def parse(request: Request) -> Model:
        try:
            data = json.loads(
                await request.body(),
                parse_float=Decimal,
                parse_constant=_refuse_constant,
            )
        except ValueError:
            raise SandboxError(400, "VALIDATION_ERROR", "the body is not valid JSON") from None
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise _validation_error(error.errors()) from None

    return parse


def _validation_error(errors: Sequence[object]) -> SandboxError:
    first = errors[0] if errors else {}
    if not isinstance(first, dict):
        return SandboxError(400, "VALIDATION_ERROR", "the request is invalid")
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    return SandboxError(400, "VALIDATION_ERROR", message, field=field)


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def checked_amount(value: Decimal, places: int, *, field: str, allow_zero: bool = False) -> Decimal:
    """A non-negative (or positive) finite amount with at most `places`, at exactly `places`."""
    if not value.is_finite():
        raise SandboxError(400, "INVALID_AMOUNT", f"{field} is not a finite number", field=field)
    if value < 0 or (value == 0 and not allow_zero):
        raise SandboxError(400, "INVALID_AMOUNT", f"{field} must be positive", field=field)
    if value != 0 and value.adjusted() >= MAX_DIGITS_BEFORE_POINT:
        raise SandboxError(400, "INVALID_AMOUNT", f"{field} is too large", field=field)
    if decimal_places(value) > places:
        raise SandboxError(
            400,
            "INVALID_AMOUNT",
            f"{field} has more than {places} decimal places",
            field=field,
        )
    return value.quantize(Decimal(1).scaleb(-places))


def money(value: Decimal, places: int) -> str:
    """A decimal string with exactly `places` places, never in exponent notation."""
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def utc_now() -> datetime:
    """Now in UTC, to the millisecond (what the wire format carries)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Database:
    """A sandbox's connection pool (autocommit connections, dict rows) and its schema.

    Nothing connects until `open()`, which the app's lifespan calls; the schema is created
    idempotently under an advisory lock, so sandboxes started side by side do not race.
    """

    def __init__(self, settings: Settings, schema: str, ddl: Sequence[str]) -> None:
        self.settings = settings
        self.schema = schema
        self._ddl = ddl
        self._pool: AsyncConnectionPool[Connection] | None = None

    @property
    def pool(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise RuntimeError(f"the {self.schema} database is not open")
        return self._pool

    async def open(self, outages: Outages) -> None:
        """Open the pool and make the schema. While PostgreSQL is away (a sandbox restarted in
        the middle of an outage) try again after a backoff delay instead of failing to start;
        a failed try leaves no pool behind (its reconnecting tasks would keep the process from
        exiting)."""
        backoff = Backoff(self.settings.retry_initial_seconds, self.settings.retry_max_seconds)
        while True:
            try:
                await self._open_once()
            except Exception as error:
                await self.close()
                if not is_outage(error):
                    raise
                outages.failed(error)
                await asyncio.sleep(backoff.next_delay())
            else:
                outages.ok(Dependency.POSTGRES)
                return

    async def _open_once(self) -> None:
        self._pool = AsyncConnectionPool(
            self.settings.conninfo(),
            connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=self.settings.pg_pool_size,
            open=False,
            name=f"sandbox-{self.schema}",
            **pool_options(self.settings),
        )
        await self._pool.open(wait=True, timeout=self.settings.pg_connect_timeout_seconds)
        register_pool(self._pool)
        async with self.transaction() as conn:
            await conn.execute(advisory_locks.SANDBOX_SCHEMA, (self.schema,))
            for statement in self._ddl:
                await conn.execute(statement)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One connection in one transaction: committed on exit, rolled back on an exception."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """One autocommit connection: each statement is its own transaction."""
        async with self.pool.connection() as conn:
            yield conn


def create_sandbox_app(title: str, database: Database) -> FastAPI:
    """The skeleton every sandbox shares: lifespan (pool and schema), error bodies, `GET /health`
    and fault injection (`/admin/faults`) on every route outside `/admin` and `/health`."""

    outages = Outages(f"sandbox-{database.schema}", logging.getLogger("otc.sandbox"))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await database.open(outages)
        try:
            async with vitals_running(database.settings, outages, Dependency.POSTGRES):
                yield
        finally:
            await database.close()

    app = FastAPI(title=title, lifespan=lifespan)
    app.add_middleware(ErrorGuard, render=_render_error, outages=outages)
    app.add_exception_handler(SandboxError, _on_sandbox_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _on_http_exception)  # type: ignore[arg-type]
    install_faults(app, FaultInjector())

    @app.get("/health")
    async def health() -> JSONResponse:
        try:
            async with database.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure to reach the database means unhealthy
            return error_response(503, "DATABASE_UNAVAILABLE", "the database does not answer")
        return JSONResponse({"status": "ok"})

    return app


def _render_error(
    status: int, code: str, message: str, headers: dict[str, str], correlation_id: str
) -> JSONResponse:
    """What `ErrorGuard` answers for an error no handler took: 503 while the database is
    away, 500 otherwise; never a plain-text body."""
    return error_response(
        status, code, message, headers=headers, extra={"correlationId": correlation_id}
    )


async def _on_sandbox_error(_: Request, error: SandboxError) -> JSONResponse:
    return error_response(
        error.status,
        error.code,
        error.message,
        headers=error.headers,
        extra=error.extra,
    )


async def _on_request_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    refusal = _validation_error(list(error.errors()))
    return error_response(refusal.status, refusal.code, refusal.message, extra=refusal.extra)


async def _on_http_exception(_: Request, error: HTTPException) -> JSONResponse:
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    code = codes.get(error.status_code, f"HTTP_{error.status_code}")
    return error_response(error.status_code, code, str(error.detail))


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
