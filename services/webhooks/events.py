"""What a customer can receive: the order events that change an order's status, each as a
Standard Webhooks message whose `data` is the public order view after the event.

ApprovalRecorded (the first of two approvals) and MovementUnresolved (a worker could not learn a
movement's outcome) are operators' facts: they leave the status as it was and are not sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.order import Order, Side, status_after
from domain.views import OrderView
from services.contracts import EventEnvelope, event_type

TEST_EVENT_TYPE = "webhook.test"


def _changes_status(name: str) -> bool:
    try:
        return status_after(name, Side.BUY) is not None
    except KeyError:  # not an event of the lifecycle table (the library's own `Created`)
        return False


ORDER_EVENT_TYPES: tuple[str, ...] = tuple(
    event_type(name)
    for name, value in vars(Order).items()
    if isinstance(value, type) and issubclass(value, Order.Event) and _changes_status(name)
)
"""`order.quoted`, `order.confirmed`, ..., `order.paid_out`: the types an endpoint can choose."""


class WebhookMessage(BaseModel):
    """The body of every webhook (Standard Webhooks): its type, when the event occurred, and
    its data. Serialised once, when the delivery is recorded; every attempt sends these bytes."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description="order.<event>, or webhook.test")
    timestamp: datetime = Field(description="when the event occurred (not when it was sent)")
    data: dict[str, Any] = Field(description="the public order view after the event")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def is_customer_facing(event_type_name: str) -> bool:
    return event_type_name in ORDER_EVENT_TYPES


def order_message(envelope: EventEnvelope, view: OrderView) -> WebhookMessage:
    return WebhookMessage(
        type=envelope.type, timestamp=envelope.occurred_at, data=view.public_json()
    )


def test_message(endpoint_id: UUID, at: datetime) -> WebhookMessage:
    return WebhookMessage(
        type=TEST_EVENT_TYPE,
        timestamp=at,
        data={"endpointId": str(endpoint_id), "message": "a test webhook from the OTC API"},
    )
