"""Per request: an `X-Request-Id` in and out, bound for the request's log lines and commands,
and the request counted by its route template, never by its raw path."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.telemetry import UNMATCHED, RequestTelemetry
from services.logs import current
from services.metrics import HTTP_DURATION, HTTP_REQUESTS
from tests.metric_values import value_of


def app_with_a_route() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str | None]:
        return {"thing": thing_id, "request": current("request_id"), "trace": current("trace_id")}

    app.add_middleware(RequestTelemetry)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_a_request_is_counted_and_timed_by_its_route_template() -> None:
    route = {"route": "/things/{thing_id}", "method": "GET"}
    before = value_of(HTTP_REQUESTS, "otc_http_requests_total", **route, status="200")
    timed = value_of(HTTP_DURATION, "otc_http_request_duration_seconds_count", **route)

    async with client(app_with_a_route()) as http:
        for _ in range(2):
            assert (await http.get(f"/things/{uuid.uuid4()}")).status_code == 200

    assert value_of(HTTP_REQUESTS, "otc_http_requests_total", **route, status="200") == before + 2
    assert value_of(HTTP_DURATION, "otc_http_request_duration_seconds_count", **route) == timed + 2


async def test_a_path_no_route_answers_is_counted_as_unmatched_not_by_its_path() -> None:
    unmatched = {"route": UNMATCHED, "method": "GET", "status": "404"}
    before = value_of(HTTP_REQUESTS, "otc_http_requests_total", **unmatched)

    async with client(app_with_a_route()) as http:
        assert (await http.get(f"/nowhere/{uuid.uuid4()}")).status_code == 404

    assert value_of(HTTP_REQUESTS, "otc_http_requests_total", **unmatched) == before + 1


async def test_the_callers_request_id_is_bound_for_the_request_and_returned() -> None:
    async with client(app_with_a_route()) as http:
        answer = await http.get("/things/1", headers={"X-Request-Id": "req-from-client-1"})

    assert answer.headers["X-Request-Id"] == "req-from-client-1"
    assert answer.json()["request"] == "req-from-client-1"
    assert answer.json()["trace"] == "req-from-client-1"


async def test_a_request_without_a_sane_id_gets_a_new_one() -> None:
    async with client(app_with_a_route()) as http:
        first = await http.get("/things/1", headers={"X-Request-Id": "bad id\n"})
        second = await http.get("/things/1")

    ids = {first.headers["X-Request-Id"], second.headers["X-Request-Id"]}
    assert len(ids) == 2
    assert "bad id\n" not in ids
    assert first.json()["request"] == first.headers["X-Request-Id"]


async def test_the_gateway_serves_its_metrics_outside_its_openapi_document() -> None:
    app = create_app()
    async with client(app) as http:
        await http.get("/nowhere")
        page = await http.get("/metrics")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    assert 'otc_http_requests_total{method="GET",route="unmatched",status="404"}' in page.text
    assert "/metrics" not in app.openapi()["paths"]
    assert "X-Request-Id" in page.headers
