"""Helpers for the sandbox and adapter tests: an in-process client that runs the app's lifespan,
a clock tests can move, and the sandboxes' admin calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.adapters.http import RetryPolicy
from services.local.sandbox.server import serving

PROVIDER_SCOPE = "partner.currency-exchange-quote.create"
EXECUTE_SCOPE = "partner.currency-exchange.create"
# Many quick tries: with a 30% fail rate, 8 tries all fail with probability 0.3**8 < 1e-4, and the
# fault draws are seeded anyway.
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay_seconds=0.005, max_delay_seconds=0.02)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling `app` in process (no socket), its lifespan running around the block."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client,
    ):
        yield client


@asynccontextmanager
async def over_http(app: FastAPI) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """`app` served by uvicorn on 127.0.0.1: its base URL and a client for its admin routes."""
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as admin:
        yield url, admin


async def set_faults(client: httpx.AsyncClient, **plan: Any) -> None:  # noqa: ANN401 - JSON values
    response = await client.post("/admin/faults", json=plan)
    assert response.status_code == 200, response.text


async def register_token(client: httpx.AsyncClient, token: str, *scopes: str) -> None:
    response = await client.post("/admin/tokens", json={"token": token, "scopes": list(scopes)})
    assert response.status_code == 201, response.text


async def fund_account(client: httpx.AsyncClient, account: object, amount: str) -> None:
    response = await client.post(f"/admin/accounts/{account}/fund", json={"amount": amount})
    assert response.status_code == 200, response.text


async def fund_wallet(client: httpx.AsyncClient, network: str, address: str, amount: str) -> None:
    response = await client.post(
        f"/admin/wallets/{network}/{address}/fund", json={"amount": amount}
    )
    assert response.status_code == 200, response.text


async def totals(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/admin/totals")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
