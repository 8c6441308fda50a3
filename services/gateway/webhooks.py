"""Webhook endpoint management (DESIGN.md section 6): `/webhook-endpoints`, customer-scoped.

Changing needs `otc-exchanges:write`, reading `otc-exchanges:read`. Another customer's endpoint
is 404 WEBHOOK_ENDPOINT_NOT_FOUND, like one that does not exist. Each route parses, calls one
use case of services/webhooks/endpoints.py, and answers; `app.state.webhooks` holds them (set by
the gateway's composition root).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from domain.errors import ErrorCode
from services.gateway.auth import Reader, Writer
from services.gateway.commands import IDEMPOTENT_REPLAYED, IdempotencyKey, optional_key
from services.gateway.params import Limit, Page, page_of
from services.gateway.problems import ApiError, responses
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.errors import (
    EndpointDisabledError,
    EndpointLimitError,
    EndpointNotFoundError,
    IdempotencyConflictError,
    WebhookError,
    WebhooksUnavailableError,
)
from services.webhooks.events import ORDER_EVENT_TYPES
from services.webhooks.model import Delivery, DeliveryStatus, Endpoint, EndpointChanges
from services.webhooks.ssrf import MAX_URL_LENGTH, UrlNotAllowedError

MAX_DESCRIPTION = 500


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="where to POST: https (http only for loopback receivers, where allowed)",
        json_schema_extra={"format": "uri"},
    ),
]
EventTypeName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(ORDER_EVENT_TYPES)})]
EventTypes = Annotated[
    list[EventTypeName],
    Field(
        max_length=len(ORDER_EVENT_TYPES),
        description="the event types to receive; empty: every type",
    ),
]


def known_types(types: list[str] | None) -> list[str] | None:
    unknown = sorted(set(types or ()) - set(ORDER_EVENT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown event type {', '.join(unknown)}; known: {', '.join(ORDER_EVENT_TYPES)}"
            " (an order completes with order.paid_out)"
        )
    return types


class CreateEndpoint(Body):
    url: Url
    event_types: EventTypes | None = None
    description: str = Field(default="", max_length=MAX_DESCRIPTION)

    _types = field_validator("event_types")(known_types)


class UpdateEndpoint(Body):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    enabled: bool | None = Field(
        default=None, description="false pauses deliveries; true resumes them"
    )

    _types = field_validator("event_types")(known_types)


class ReplayRequest(Body):
    since: AwareDatetime = Field(description="from this time (inclusive), with a time zone")
    until: AwareDatetime | None = Field(
        default=None, description="to this time (exclusive); omitted: now"
    )

    @model_validator(mode="after")
    def check_window(self) -> ReplayRequest:
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class EndpointOut(Out):
    id: UUID
    url: str
    description: str
    event_types: list[str] = Field(description="empty: every type")
    enabled: bool
    disabled_reason: str | None = Field(description="why deliveries are paused, when they are")
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            disabled_at=endpoint.disabled_at,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class CreatedEndpoint(EndpointOut):
    secret: str = Field(description="the signing secret (whsec_...): shown only in this answer")


class EndpointPage(Out):
    data: list[EndpointOut]
    page: int
    limit: int
    total: int


class RotatedSecret(Out):
    secret: str = Field(description="the new signing secret: shown only in this answer")
    previous_secrets_expire_at: datetime = Field(
        description="until then the previous secret signs too (both signatures are sent)"
    )


class DeliveryOut(Out):
    webhook_id: str = Field(description="the webhook-id header: the same on every attempt")
    event_id: UUID
    event_type: str
    order_id: UUID | None
    order_version: int | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = Field(description="the HTTP status of the last attempt")
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            order_id=delivery.order_id,
            order_version=delivery.version,
            status=delivery.status,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            last_attempt_at=delivery.last_attempt_at,
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )


class DeliveryPage(Out):
    data: list[DeliveryOut]
    page: int
    limit: int
    total: int


class ReplayQueued(Out):
    queued: int = Field(description="deliveries queued again, each with its webhook-id")


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
BAD_REQUEST, UNPROCESSABLE = 400, 422


def with_body(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """The responses of a route with a JSON body: a body that cannot be read at all is 400."""
    documented = responses(*codes)
    bad = documented.get(BAD_REQUEST, documented[UNPROCESSABLE])
    names = [bad["description"]] if BAD_REQUEST in documented else []
    unreadable = ", ".join([*names, "HTTP_ERROR (unreadable body)"])
    documented[BAD_REQUEST] = {**bad, "description": unreadable}
    return documented


@router.post(
    "",
    status_code=201,
    response_model=CreatedEndpoint,
    responses=with_body(
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
    return JSONResponse(out.model_dump(mode="json", by_alias=True), 201, headers=headers)


@router.get("", response_model=EndpointPage, responses=responses())
async def list_endpoints(
    principal: Reader, hooks: Webhooks, page: Page = 1, limit: Limit = 20
) -> dict[str, Any]:
    """Your endpoints, newest first; never their secrets."""
    found, total = await hooks.page(principal.customer_id, page=page, limit=limit)
    return page_of([EndpointOut.of(e) for e in found], page, limit, total)


@router.get("/{endpoint_id}", response_model=EndpointOut, responses=responses(NOT_FOUND))
async def get_endpoint(endpoint_id: EndpointId, principal: Reader, hooks: Webhooks) -> EndpointOut:
    """One of your endpoints; `disabledReason` says why deliveries are paused, if they are."""
    with refusals():
        return EndpointOut.of(await hooks.get(principal.customer_id, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=with_body(NOT_FOUND, ErrorCode.WEBHOOK_URL_NOT_ALLOWED),
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


@router.delete("/{endpoint_id}", status_code=204, responses=responses(NOT_FOUND))
async def delete_endpoint(endpoint_id: EndpointId, principal: Writer, hooks: Webhooks) -> Response:
    """Delete the endpoint and its deliveries; nothing more is sent to it."""
    with refusals():
        await hooks.remove(principal.customer_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=RotatedSecret,
    responses=responses(
        NOT_FOUND, ErrorCode.IDEMPOTENCY_KEY_INVALID, ErrorCode.WEBHOOKS_UNAVAILABLE
    ),
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
    responses=responses(
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


@router.get(
    "/{endpoint_id}/deliveries", response_model=DeliveryPage, responses=responses(NOT_FOUND)
)
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
    responses=with_body(NOT_FOUND, ErrorCode.IDEMPOTENCY_KEY_INVALID),
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
