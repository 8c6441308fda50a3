"""The app skeleton every sandbox shares: the lifespan that opens its database, `GET /health`,
fault injection, and the handlers that answer every error as a `{"code", "message"}` body (an
unexpected one too: 500 INTERNAL_ERROR, or 503 while the database is away)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.http_errors import ErrorGuard
from services.local.sandbox.common import SandboxError, error_response, validation_error
from services.local.sandbox.database import Database
from services.local.sandbox.faults import FaultInjector, install_faults
from services.resilience import Dependency, Outages
from services.vitals import vitals_running


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
    refusal = validation_error(list(error.errors()))
    return error_response(refusal.status, refusal.code, refusal.message, extra=refusal.extra)


async def _on_http_exception(_: Request, error: HTTPException) -> JSONResponse:
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    code = codes.get(error.status_code, f"HTTP_{error.status_code}")
    return error_response(error.status_code, code, str(error.detail))
