"""`GET /health` (the process answers) and `GET /ready` (its dependencies answer and every lag
is within its limit; 503 with `Retry-After` when not)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from services.gateway.ports import GatewayDep
from services.gateway.readiness import Report
from services.gateway.schemas import Health

health = APIRouter(tags=["health"])


@health.get("/health", response_model=Health)
async def liveness() -> Health:
    """The process answers."""
    return Health(status="ok")


@health.get(
    "/ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "a dependency is down or a lag too long"}},
)
async def readiness(gw: GatewayDep) -> Response:
    """PostgreSQL and Kafka answer, and the relay, the projector and every consumer group are
    within their lag limits (the lags are in the answer either way)."""
    report = Report(ready=True) if gw.readiness is None else await gw.readiness()
    body = Health(
        status="ok" if report.ready else "not ready", checks=report.checks, lags=report.lags
    )
    if report.ready:
        return JSONResponse(body.model_dump())
    return JSONResponse(
        body.model_dump(),
        status_code=503,
        headers={"Retry-After": str(gw.retry_after_seconds)},
    )
