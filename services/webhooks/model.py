"""The records of webhooks: endpoints, the events they are sent, deliveries, and the claim of a
delivery for one attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from services.webhooks.schedule import Decision
from services.webhooks.signing import webhook_id


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Waiting for an attempt: due, scheduled for a retry, or held behind an earlier event of
    its order."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Every attempt of the schedule failed, or the receiver answered 410 Gone."""


@dataclass(frozen=True)
class Endpoint:
    id: UUID
    customer_id: UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    """The event types it receives; empty: every type."""
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    disabled_at: datetime | None = None

    def receives(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


@dataclass(frozen=True)
class NewEndpoint:
    id: UUID
    customer_id: UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    sealed_secret: bytes = field(repr=False)
    fingerprint: str | None = None
    """Of the request that created it with an Idempotency-Key: a retry finds the same one."""


@dataclass(frozen=True)
class EndpointChanges:
    url: str | None = None
    description: str | None = None
    event_types: tuple[str, ...] | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """An event as webhooks send it: its message body, serialised once, for every endpoint."""

    event_id: UUID
    customer_id: UUID
    type: str
    occurred_at: datetime
    body: bytes
    order_id: UUID | None = None
    version: int | None = None


@dataclass(frozen=True)
class Delivery:
    """One event to one endpoint, as the customer sees it."""

    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    order_id: UUID | None = None
    version: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.endpoint_id, self.event_id)


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one sender for one attempt: what it needs to send it."""

    endpoint_id: UUID
    event_id: UUID
    lease: UUID
    url: str
    body: bytes
    sealed_secrets: tuple[bytes, ...] = field(repr=False)
    attempts: int
    """Attempts made before this one."""
    event_type: str = ""
    order_id: UUID | None = None
    version: int | None = None
    first_attempt_at: datetime | None = None

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.endpoint_id, self.event_id)


@dataclass(frozen=True)
class Disable:
    """Disable the endpoint with this reason; when `unless_success_since` is set, only if no
    delivery to it has succeeded since then."""

    reason: str
    unless_success_since: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, to record: when, what came back, what follows."""

    at: datetime
    decision: Decision
    status_code: int | None = None
    error: str | None = None
    disable: Disable | None = None
