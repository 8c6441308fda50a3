"""Webhook endpoint management (DESIGN.md section 6): `/webhook-endpoints`, customer-scoped.

Changing needs `otc-exchanges:write`, reading `otc-exchanges:read`. Another customer's endpoint
is 404 WEBHOOK_ENDPOINT_NOT_FOUND, like one that does not exist. Each route parses, calls one
use case of services/webhooks/endpoints.py, and answers; `app.state.webhooks` holds them (set by
the gateway's composition root). The bodies are in services/gateway/webhook_schemas.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from domain.errors import ErrorCode
from services.gateway.auth import Reader, Writer
from services.gateway.commands import IDEMPOTENT_REPLAYED, IdempotencyKey, optional_key
from services.gateway.headers import located
from services.gateway.params import Limit, Page, page_of
from services.gateway.problems import ApiError, responses
from services.gateway.webhook_schemas import (
    CreatedEndpoint,
    CreateEndpoint,
    DeliveryOut,
    DeliveryPage,
    EndpointOut,
    EndpointPage,
    ReplayQueued,
    ReplayRequest,
    RotatedSecret,
    UpdateEndpoint,
)
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.errors import (
    EndpointDisabledError,
    EndpointLimitError,
    EndpointNotFoundError,
    IdempotencyConflictError,
    WebhookError,
    WebhooksUnavailableError,
)
from services.webhooks.model import EndpointChanges
from services.webhooks.ssrf import UrlNotAllowedError


def webhooks(request: Request) -> WebhookEndpoints:
    found: WebhookEndpoints | None = getattr(request.app.state, "webhooks", None)
    if found is None:
        raise ApiError(ErrorCode.WEBHOOKS_UNAVAILABLE, "webhooks are not available here")
    return found


Webhooks = Annotated[WebhookEndpoints, Depends(webhooks)]
EndpointId = Annotated[UUID, Path(description="a webhook endpoint of yours")]

CODES: dict[type[Exception], ErrorCode] = {
    EndpointNotFoundError: ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND,
    UrlNotAllowedError: ErrorCode.WEBHOOK_URL_NOT_ALLOWED,
    EndpointDisabledError: ErrorCode.WEBHOOK_ENDPOINT_DISABLED,
    EndpointLimitError: ErrorCode.WEBHOOK_ENDPOINT_LIMIT,
    IdempotencyConflictError: ErrorCode.IDEMPOTENCY_KEY_REUSED,
    WebhooksUnavailableError: ErrorCode.WEBHOOKS_UNAVAILABLE,
}


@contextmanager
def refusals() -> Iterator[None]:
    """The use cases' refusals as problems with their stable codes."""
    try:
        yield
    except (WebhookError, UrlNotAllowedError) as error:
        code = CODES[type(error)]
        field = "url" if code is ErrorCode.WEBHOOK_URL_NOT_ALLOWED else None
        headers = {"Retry-After": "60"} if code is ErrorCode.WEBHOOKS_UNAVAILABLE else None
        raise ApiError(code, str(error), field=field, headers=headers) from None


router = APIRouter(prefix="/webhook-endpoints", tags=["webhooks"])
NOT_FOUND = ErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND


def errors(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """A webhook route's `responses`: its codes, and 503 where the gateway has no webhooks."""
    return responses(ErrorCode.WEBHOOKS_UNAVAILABLE, *codes)


@router.post(
    "",
    status_code=201,
    response_model=CreatedEndpoint,
    responses=errors(
        ErrorCode.WEBHOOK_URL_NOT_ALLOWED,
        ErrorCode.WEBHOOK_ENDPOINT_LIMIT,
        ErrorCode.IDEMPOTENCY_KEY_INVALID,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ErrorCode.WEBHOOKS_UNAVAILABLE,
    ),
)
async def create_endpoint(
    body: CreateEndpoint,
    principal: Writer,
    hooks: Webhooks,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Register an endpoint. The answer carries its signing secret, this once."""
    key = optional_key(idempotency_key)
    with refusals():
        made = await hooks.register(
            principal.customer_id,
            url=body.url,
            event_types=body.event_types or (),
            description=body.description,
            idempotency_key=key,
        )
    out = CreatedEndpoint(**EndpointOut.of(made.endpoint).model_dump(), secret=made.secret)
    headers = {IDEMPOTENT_REPLAYED: "true"} if made.replayed else {}
    answer = JSONResponse(out.model_dump(mode="json", by_alias=True), 201, headers=headers)
    return located(answer, router.url_path_for("get_endpoint", endpoint_id=str(out.id)))


@router.get("", response_model=EndpointPage, responses=errors())
async def list_endpoints(
    principal: Reader, hooks: Webhooks, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Your endpoints, newest first; never their secrets."""
    found, total = await hooks.page(principal.customer_id, page=page, limit=limit)
    return page_of([EndpointOut.of(e) for e in found], page, limit, total)


@router.get("/{endpoint_id}", response_model=EndpointOut, responses=errors(NOT_FOUND))
async def get_endpoint(endpoint_id: EndpointId, principal: Reader, hooks: Webhooks) -> EndpointOut:
    """One of your endpoints; `disabledReason` says why deliveries are paused, if they are."""
    with refusals():
        return EndpointOut.of(await hooks.get(principal.customer_id, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=errors(NOT_FOUND, ErrorCode.WEBHOOK_URL_NOT_ALLOWED),
)
async def update_endpoint(
    endpoint_id: EndpointId, body: UpdateEndpoint, principal: Writer, hooks: Webhooks
) -> EndpointOut:
    """Change the URL, event types or description; enable or disable it."""
    changes = EndpointChanges(
        url=body.url,
        description=body.description,
        event_types=None if body.event_types is None else tuple(body.event_types),
        enabled=body.enabled,
    )
    with refusals():
        return EndpointOut.of(await hooks.change(principal.customer_id, endpoint_id, changes))


@router.delete("/{endpoint_id}", status_code=204, responses=errors(NOT_FOUND))
async def delete_endpoint(endpoint_id: EndpointId, principal: Writer, hooks: Webhooks) -> Response:
    """Delete the endpoint and its deliveries; nothing more is sent to it."""
    with refusals():
        await hooks.remove(principal.customer_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=RotatedSecret,
    responses=errors(NOT_FOUND, ErrorCode.IDEMPOTENCY_KEY_INVALID, ErrorCode.WEBHOOKS_UNAVAILABLE),
)
async def rotate_secret(
    endpoint_id: EndpointId,
    principal: Writer,
    hooks: Webhooks,
    idempotency_key: IdempotencyKey = None,
) -> RotatedSecret:
    """A new signing secret, shown this once. The previous one keeps signing beside it for a
    grace period: each webhook then carries both signatures."""
    optional_key(idempotency_key)
    with refusals():
        rotated = await hooks.rotate(principal.customer_id, endpoint_id)
    return RotatedSecret(
        secret=rotated.secret, previous_secrets_expire_at=rotated.previous_secrets_expire_at
    )


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses=errors(
        NOT_FOUND, ErrorCode.WEBHOOK_ENDPOINT_DISABLED, ErrorCode.IDEMPOTENCY_KEY_INVALID
    ),
)
async def send_test(
    endpoint_id: EndpointId,
    principal: Writer,
    hooks: Webhooks,
    idempotency_key: IdempotencyKey = None,
) -> DeliveryOut:
    """Queue a `webhook.test` event to this endpoint; follow it in its deliveries."""
    optional_key(idempotency_key)
    with refusals():
        return DeliveryOut.of(await hooks.send_test(principal.customer_id, endpoint_id))


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryPage, responses=errors(NOT_FOUND))
async def list_deliveries(
    endpoint_id: EndpointId,
    principal: Reader,
    hooks: Webhooks,
    page: Page = 1,
    limit: Limit = 20,
) -> dict[str, Any]:
    """The endpoint's deliveries, newest first: status, attempts, last answer, next attempt."""
    with refusals():
        found, total = await hooks.deliveries(
            principal.customer_id, endpoint_id, page=page, limit=limit
        )
    return page_of([DeliveryOut.of(d) for d in found], page, limit, total)


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    response_model=ReplayQueued,
    responses=errors(NOT_FOUND, ErrorCode.IDEMPOTENCY_KEY_INVALID),
)
async def replay(
    endpoint_id: EndpointId,
    body: ReplayRequest,
    principal: Writer,
    hooks: Webhooks,
    idempotency_key: IdempotencyKey = None,
) -> ReplayQueued:
    """Queue again every event of a window (for a receiver that was down past the retry
    schedule): same webhook-ids and bodies, a fresh schedule, each order in version order."""
    optional_key(idempotency_key)
    with refusals():
        queued = await hooks.replay(principal.customer_id, endpoint_id, body.since, body.until)
    return ReplayQueued(queued=queued)
