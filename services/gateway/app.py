"""The REST API of seed 000 (DESIGN.md section 6), assembled: the routers, and every error
answered as a problem. Where to look for the rest:

- routes/customer.py, routes/ops.py, routes/webhooks.py, health.py: the routes, each a few lines;
- auth.py: who is calling and with which scope;
- commands.py: the command round trip (envelope, idempotency, reply, read-your-writes);
- positions.py: how far the order list has got, heard from the projector (read-your-writes);
- queries.py: the reads (the `order_list` read model, resources, balances, history);
- ports.py: the gateway's collaborators, built by its composition root (__main__.py);
- contract.py: the OpenAPI document, completed from each route's errors and scope;
- console/: the operator console at /console (HTML pages over the same commands and reads)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.asyncapi import router as asyncapi
from services.gateway.console.routes import install as install_console
from services.gateway.contract import TAGS, Api, operation_id
from services.gateway.headers import RETRYABLE
from services.gateway.health import health
from services.gateway.ports import Gateway
from services.gateway.problems import (
    ApiError,
    on_api_error,
    on_http_error,
    on_validation_error,
    render_problem,
)
from services.gateway.routes.customer import customer
from services.gateway.routes.ops import ops
from services.gateway.routes.webhooks import router as webhook_endpoints
from services.gateway.telemetry import RequestTelemetry, metrics_page
from services.http_errors import ErrorGuard
from services.metrics import GATEWAY, expose
from services.resilience import Outages


def create_app(
    lifespan: Callable[[FastAPI], Any] | None = None,
    *,
    retry_after_seconds: int = 5,
    outages: Outages | None = None,
) -> FastAPI:
    """The FastAPI app; `lifespan` sets `app.state.gateway` (services/gateway/__main__.py).
    Whatever no handler answers becomes a problem too (`services.http_errors.ErrorGuard`)."""
    app = Api(
        title="OTC Exchanges API",
        version="1.0.0",
        description="EUR <-> USDC over-the-counter exchange: quotes, orders, operator approval.",
        lifespan=lifespan,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
    )
    app.include_router(customer)
    app.include_router(ops)
    app.include_router(webhook_endpoints)
    app.include_router(health)
    app.include_router(asyncapi)
    install_console(app)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_middleware(
        ErrorGuard,
        render=render_problem,
        retry_after_seconds=retry_after_seconds,
        outages=outages,
        retry_after_statuses=RETRYABLE,
    )
    # Outermost: the request id and the figures cover every answer, problems included.
    app.add_middleware(RequestTelemetry)
    expose(GATEWAY)
    app.add_route("/metrics", metrics_page, include_in_schema=False)
    return app


@asynccontextmanager
async def with_gateway(app: FastAPI, gw: Gateway) -> AsyncIterator[None]:
    """A lifespan that sets a ready-made `Gateway` (for tests: the app with fakes)."""
    app.state.gateway = gw
    yield
