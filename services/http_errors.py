"""The last word on errors of an HTTP app (the gateway, the sandboxes): no plain-text 500, ever.

`ErrorGuard` is an ASGI middleware. It gives every request a correlation id (the caller's
`X-Correlation-Id` when it is a sane token, else the request id of the logs when one is bound,
a new one otherwise), returns it on every response,
and answers an exception that nothing else handled:

- an outage of PostgreSQL or Kafka (`services.resilience.dependency_of`): 503 with
  `Retry-After`; the outage is noted in the process's `Outages`, which logs it once;
- anything else: 500 `INTERNAL_ERROR`, naming the correlation id; the traceback goes to the log
  with that id, never to the caller.

The body is the app's own error shape, rendered by the function the app gives. An app may also
name statuses (`retry_after_statuses`, the gateway's 502, 503 and 504) whose every answer, from
wherever it comes, carries `Retry-After`: the guard adds it to those that do not say it already.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.logs import current
from services.resilience import Dependency, Outages, dependency_of

log = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"
RETRY_AFTER = "Retry-After"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")

Render = Callable[[int, str, str, dict[str, str], str], Response]
"""(status, code, message, headers, correlation id) -> the response in the app's error shape."""


def correlation_id(request: Request) -> str:
    """The correlation id `ErrorGuard` gave this request (a new one outside the guard)."""
    found = getattr(request.state, "correlation_id", None)
    return found if isinstance(found, str) else uuid.uuid4().hex


class ErrorGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        render: Render,
        retry_after_seconds: int = 5,
        outages: Outages | None = None,
        retry_after_statuses: frozenset[int] = frozenset(),
    ) -> None:
        self.app = app
        self.render = render
        self.retry_after_seconds = retry_after_seconds
        self.outages = outages
        self.retry_after_statuses = retry_after_statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Request(scope).headers.get(CORRELATION_HEADER, "")
        cid = incoming if _SANE_ID.match(incoming) else current("request_id") or uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = cid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                if CORRELATION_HEADER not in headers:
                    headers.append(CORRELATION_HEADER, cid)
                retry = message["status"] in self.retry_after_statuses
                if retry and RETRY_AFTER not in headers:
                    headers.append(RETRY_AFTER, str(self.retry_after_seconds))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            log.debug("%s %s: the client went away (%s)", scope["method"], scope["path"], cid)
        except Exception as error:
            if started:
                raise  # the answer is on its way already: nothing better can be said
            response = self.answer(scope, error, cid)
            await response(scope, receive, send_with_id)

    def answer(self, scope: Scope, error: Exception, cid: str) -> Response:
        dependency = dependency_of(error)
        if dependency is not None:
            if self.outages is not None:
                self.outages.failed(error, dependency)
            log.debug(
                "%s %s: %s is unavailable (%s)", scope["method"], scope["path"], dependency, cid
            )
            return self.render(
                503,
                "SERVICE_UNAVAILABLE",
                f"{_what(dependency)} is unavailable for a moment; retry after "
                f"{self.retry_after_seconds} s (a request with an Idempotency-Key may be retried "
                "with the same key safely)",
                {RETRY_AFTER: str(self.retry_after_seconds)},
                cid,
            )
        log.error(
            "%s %s failed unexpectedly (correlation id %s)",
            scope["method"],
            scope["path"],
            cid,
            exc_info=error,
        )
        return self.render(
            500,
            "INTERNAL_ERROR",
            f"an unexpected error occurred; quote correlation id {cid} when asking about it",
            {},
            cid,
        )


def _what(dependency: Dependency) -> str:
    return {Dependency.POSTGRES: "the database", Dependency.KAFKA: "the message broker"}[dependency]
