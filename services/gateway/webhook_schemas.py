"""Request and response bodies of the webhook endpoint routes (routes/webhooks.py), camelCase on
the wire. An endpoint's secret appears only in the answer that creates or rotates it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

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

from services.gateway.schemas import Body
from services.webhooks.events import ORDER_EVENT_TYPES
from services.webhooks.model import Delivery, DeliveryStatus, Endpoint
from services.webhooks.ssrf import MAX_URL_LENGTH

MAX_DESCRIPTION = 500


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
