"""The sandboxes' fault injection in process, on a bare app: a call drawing no fault goes through
untouched, a failure before the route runs nothing, and the faults after the route replace its
answer only once it ran (a garbled body only for a 2xx)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.local.sandbox.faults import FaultInjector, install_faults


class Ledger:
    def __init__(self) -> None:
        self.booked = 0


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[httpx.AsyncClient, Ledger]]:
    app = FastAPI()
    ledger = Ledger()

    @app.post("/transfers")
    async def book() -> JSONResponse:
        ledger.booked += 1
        return JSONResponse({"booked": ledger.booked}, status_code=201)

    @app.post("/refused")
    async def refuse() -> JSONResponse:
        return JSONResponse({"code": "INSUFFICIENT_FUNDS"}, status_code=422)

    install_faults(app, FaultInjector())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client, ledger


async def faults(client: httpx.AsyncClient, **plan: object) -> None:
    assert (await client.post("/admin/faults", json=plan)).status_code == 200


async def test_without_faults_the_answer_is_the_routes(
    sandbox: tuple[httpx.AsyncClient, Ledger],
) -> None:
    client, ledger = sandbox

    response = await client.post("/transfers")

    assert (response.status_code, response.json()) == (201, {"booked": 1})
    assert ledger.booked == 1


async def test_a_failure_before_the_route_runs_nothing(
    sandbox: tuple[httpx.AsyncClient, Ledger],
) -> None:
    client, ledger = sandbox
    await faults(client, failRate=1.0, failStatus=502)

    response = await client.post("/transfers")

    assert (response.status_code, response.json()["code"]) == (502, "INJECTED_FAILURE")
    assert ledger.booked == 0


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("failAfterCommitRate", 503, "INJECTED_FAILURE"), ("conflictRate", 409, "REFERENCE_CONFLICT")],
)
async def test_a_fault_after_the_route_replaces_the_answer_of_a_booked_transfer(
    sandbox: tuple[httpx.AsyncClient, Ledger], fault: str, status: int, code: str
) -> None:
    client, ledger = sandbox
    await faults(client, **{fault: 1.0})

    response = await client.post("/transfers")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert ledger.booked == 1


async def test_a_garbled_answer_keeps_the_2xx_status_and_loses_the_json(
    sandbox: tuple[httpx.AsyncClient, Ledger],
) -> None:
    client, ledger = sandbox
    await faults(client, garbledRate=1.0)

    response = await client.post("/transfers")

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/html")
    assert ledger.booked == 1


async def test_a_refusal_is_never_garbled(sandbox: tuple[httpx.AsyncClient, Ledger]) -> None:
    client, _ = sandbox
    await faults(client, garbledRate=1.0)

    response = await client.post("/refused")

    assert (response.status_code, response.json()) == (422, {"code": "INSUFFICIENT_FUNDS"})
