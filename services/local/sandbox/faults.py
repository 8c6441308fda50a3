"""Fault injection for tests: latency, a fraction of failed calls, lost responses, an outage.

Set with `POST /admin/faults`, read with `GET /admin/faults`, reset with `DELETE /admin/faults`.
Faults apply to every route outside `/admin`, `/health` and the API docs. An injected failure
happens BEFORE the route runs, so it changes nothing. Three faults happen AFTER the route ran and
committed, which is what a client must survive without moving money twice or calling a booked
transfer a failure:

- `failAfterCommitRate`: the response is replaced by the failure (a lost response);
- `garbledRate`: the response keeps its 2xx status but its body is not JSON (a broken proxy);
- `conflictRate`: the response is a 409 `REFERENCE_CONFLICT`, as a ledger answers a reference
  it already booked.

`garbledRate` and `conflictRate` apply to writes only (not GET), so that a client can still read
a transfer back by its reference to learn what really happened.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXEMPT_PREFIXES = ("/admin", "/health", "/docs", "/redoc", "/openapi.json")


class FaultPlan(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=120_000, description="delay before each call")
    latency_rate: float = Field(default=1.0, ge=0, le=1, description="share of calls delayed")
    fail_rate: float = Field(default=0.0, ge=0, le=1, description="share failed before running")
    fail_status: Literal[429, 500, 502, 503, 504] = Field(default=503, description="their status")
    fail_after_commit_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share whose response is lost after the route committed",
    )
    garbled_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of writes answered 2xx with a body that is not JSON, after committing",
    )
    conflict_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of writes answered 409 REFERENCE_CONFLICT, after committing",
    )
    down: bool = Field(default=False, description="refuse every call with 503")
    seed: int | None = Field(default=None, description="seed of the draws, for repeatable tests")


@dataclass(frozen=True)
class Decision:
    delay_seconds: float
    fail_before: bool
    fail_after: bool
    garbled: bool = False
    conflict: bool = False


class FaultInjector:
    """Draws, per call, whether to delay and whether to fail (state of this process only)."""

    def __init__(self) -> None:
        self.plan = FaultPlan()
        self._draws = random.Random()  # noqa: S311 - fault draws are not security-relevant

    def configure(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._draws = random.Random(plan.seed)  # noqa: S311 - as above

    def decide(self, *, write: bool) -> Decision:
        plan = self.plan
        delayed = self._draws.random() < plan.latency_rate
        fail_before = plan.down or self._draws.random() < plan.fail_rate
        fail_after = self._draws.random() < plan.fail_after_commit_rate
        garbled = self._draws.random() < plan.garbled_rate
        conflict = self._draws.random() < plan.conflict_rate
        return Decision(
            delay_seconds=plan.latency_ms / 1000 if delayed else 0.0,
            fail_before=fail_before,
            fail_after=fail_after,
            garbled=write and garbled,
            conflict=write and conflict,
        )


def _failure(plan: FaultPlan) -> JSONResponse:
    if plan.down:
        return JSONResponse(
            {"code": "SERVICE_DOWN", "message": "the service is down (injected)"},
            status_code=503,
        )
    return JSONResponse(
        {"code": "INJECTED_FAILURE", "message": "the call failed (injected)"},
        status_code=plan.fail_status,
        headers={"Retry-After": "0"} if plan.fail_status in {429, 503} else None,
    )


def _conflict() -> JSONResponse:
    return JSONResponse(
        {"code": "REFERENCE_CONFLICT", "message": "this reference is in use (injected)"},
        status_code=409,
    )


def _garbled(status: int) -> Response:
    return Response(
        b"<html><body>502 Bad Gateway</body></html>", status_code=status, media_type="text/html"
    )


class FaultMiddleware:
    """Plain ASGI (no `BaseHTTPMiddleware`, whose task group and streams cost every call): a
    call that draws no fault goes straight through; one whose response is to be replaced after
    the route committed runs with its response held back."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(write=scope["method"] != "GET")
        if decision.delay_seconds:
            await asyncio.sleep(decision.delay_seconds)
        if decision.fail_before:
            await _failure(self.injector.plan)(scope, receive, send)
            return
        if not (decision.fail_after or decision.conflict or decision.garbled):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
        if decision.fail_after:
            await _failure(self.injector.plan)(scope, receive, send)
        elif decision.conflict:
            await _conflict()(scope, receive, send)
        elif status < 300:  # noqa: PLR2004 - 2xx: garbled
            await _garbled(status)(scope, receive, send)
        else:
            for message in held:
                await send(message)


def install_faults(app: FastAPI, injector: FaultInjector) -> None:
    app.add_middleware(FaultMiddleware, injector=injector)

    @app.get("/admin/faults")
    async def read_faults() -> dict[str, object]:
        return injector.plan.model_dump(by_alias=True)

    @app.post("/admin/faults")
    async def set_faults(plan: FaultPlan) -> dict[str, object]:
        injector.configure(plan)
        return injector.plan.model_dump(by_alias=True)

    @app.delete("/admin/faults")
    async def reset_faults() -> dict[str, object]:
        injector.configure(FaultPlan())
        return injector.plan.model_dump(by_alias=True)
