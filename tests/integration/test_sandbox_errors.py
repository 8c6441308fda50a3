"""A sandbox answers every error as its `{"code", "message"}` JSON, the unexpected ones too."""

from __future__ import annotations

import psycopg
import pytest
from fastapi import FastAPI

from services.local.sandbox import bank
from services.settings import Settings
from tests.integration.sandboxes import in_process

pytestmark = pytest.mark.integration


def failing(app: FastAPI, error: Exception) -> FastAPI:
    @app.get("/accounts/failing/now")
    async def fail() -> None:
        raise error

    # Routes match in order: move the failing one before the bank's own /accounts/{id}.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


async def test_an_unexpected_error_is_a_json_500_with_a_correlation_id(settings: Settings) -> None:
    app = failing(bank.create_app(settings), RuntimeError("ledger row 7 is corrupt"))
    async with in_process(app) as client:
        response = await client.get("/accounts/failing/now")

    body = response.json()
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert body["code"] == "INTERNAL_ERROR"
    assert body["correlationId"] == response.headers["x-correlation-id"]
    assert "corrupt" not in response.text


async def test_a_database_outage_is_a_json_503_with_retry_after(settings: Settings) -> None:
    app = failing(bank.create_app(settings), psycopg.OperationalError("server closed"))
    async with in_process(app) as client:
        response = await client.get("/accounts/failing/now")

    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"] == "5"
