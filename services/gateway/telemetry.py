"""Per request: an id to follow it by, its metrics and one log line.

`RequestTelemetry` is the gateway's outermost ASGI middleware. It takes the caller's
`X-Request-Id` when it is a sane token (a new id otherwise), returns it on the response, and
binds it for the request's log lines (services/logs.py) as `request_id` and as `trace_id`, which
the command client carries in the `trace_id` header of the commands it sends
(services/contracts.py). When the answer is out it counts the request by route template (never
the raw path, which holds ids), method and status, observes its duration and logs one line.
`/metrics` serves this process's registry.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.logs import bound
from services.metrics import HTTP_DURATION, HTTP_REQUESTS, Children

log = logging.getLogger("otc.gateway.requests")

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")
UNMATCHED = "unmatched"
"""The route label of a request no route answers (a 404 for an unknown path)."""
QUIET_ROUTES = frozenset({"/health", "/metrics"})
"""Probed often: logged at DEBUG only."""


async def metrics_page(_: Request) -> Response:
    """This process's registry in Prometheus's text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID:
            text = bytes(value).decode("latin-1")
            if _SANE_ID.match(text):
                return text
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._requests = Children(HTTP_REQUESTS)
        self._durations = Children(HTTP_DURATION)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with bound(request_id=request_id, trace_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route, method = route_of(scope), str(scope["method"])
        self._requests.get(route, method, str(status)).inc()
        self._durations.get(route, method).observe(seconds)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        path: Any = scope.get("path", "")
        log.log(level, "%s %s %d in %.1f ms", method, path, status, seconds * 1000)
