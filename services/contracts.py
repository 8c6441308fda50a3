"""Kafka message contracts of DESIGN.md section 5: versioned pydantic models, camelCase on the
wire. These are the published shapes; the aggregate's event classes never leave the engine."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import to_jsonable_python

from domain.commands import COMMAND_TYPES, ActorRef, Command
from domain.errors import DomainError, ErrorCode

CORRELATION_ID = "correlation_id"
REPLY_TO = "reply_to"
ERROR_HEADER = "error"

EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:otc:order-events")


class Contract(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class CommandEnvelope(Contract):
    """A command on `otc.commands`, keyed by order id."""

    schema_version: Literal[1] = 1
    command_id: UUID = Field(description="unique per command; redelivery repeats it")
    type: str = Field(description="the command's name, e.g. RequestQuote")
    order_id: UUID
    customer_id: UUID
    actor: ActorRef
    idempotency_key: UUID | None = None
    issued_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, command: Command) -> CommandEnvelope:
        common = {"command_id", "order_id", "customer_id", "actor", "idempotency_key", "issued_at"}
        return cls(
            command_id=command.command_id,
            type=type(command).__name__,
            order_id=command.order_id,
            customer_id=command.customer_id,
            actor=command.actor,
            idempotency_key=command.idempotency_key,
            issued_at=command.issued_at,
            payload=command.model_dump(mode="json", by_alias=True, exclude={*common, "type"}),
        )

    def to_command(self) -> Command:
        """The domain command; raises DomainError(VALIDATION_ERROR) when it does not parse."""
        command_class = COMMAND_TYPES.get(self.type)
        if command_class is None:
            raise DomainError(
                ErrorCode.VALIDATION_ERROR, f"unknown command type {self.type!r}", field="type"
            )
        common = self.model_dump(by_alias=True, exclude={"schema_version", "type", "payload"})
        return command_class.model_validate({**self.payload, **common})


class ErrorBody(Contract):
    status: int
    code: ErrorCode
    message: str
    field: str | None = None

    @classmethod
    def of(cls, error: DomainError) -> ErrorBody:
        return cls(status=error.status, code=error.code, message=error.message, field=error.field)


class ReplyEnvelope(Contract):
    """The engine's answer to one command, on `otc.replies` for the instance in `reply_to`."""

    schema_version: Literal[1] = 1
    command_id: UUID
    ok: bool
    order: dict[str, Any] | None = Field(default=None, description="the public order view")
    error: ErrorBody | None = None
    position: int | None = Field(
        default=None,
        description="notification id of the last event written, for read-your-writes",
    )
    replayed: bool = Field(default=False, description="answered from an idempotency key")


class EventEnvelope(Contract):
    """A stored order event on `otc.order-events`, keyed by order id."""

    schema_version: Literal[1] = 1
    event_id: UUID = Field(description="stable: derived from order id and version")
    type: str = Field(description="order.quoted, order.source_debited, ...")
    order_id: UUID
    customer_id: UUID
    side: str
    version: int
    position: int = Field(description="notification id in the event store")
    occurred_at: datetime
    data: dict[str, Any]


BASE_EVENT_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "customer_id", "side"},
)
# Stay inside the platform: provider quote ids, bank references, chain transaction hashes.
SERVER_SIDE_FIELDS = frozenset({"providerQuoteId", "reference"})


def event_data(event: object, *, server_side: bool = True) -> dict[str, Any]:
    """An order event's own fields as camelCase JSON values (Decimal as a string)."""
    data = {
        to_camel(name): to_jsonable_python(value)
        for name, value in vars(event).items()
        if name not in BASE_EVENT_FIELDS
    }
    if not server_side:
        data = {name: value for name, value in data.items() if name not in SERVER_SIDE_FIELDS}
    return data


def event_id(order_id: UUID, version: int) -> UUID:
    return uuid5(EVENT_NAMESPACE, f"{order_id}:{version}")


def event_type(class_name: str) -> str:
    """`SourceDebitFailed` -> `order.source_debit_failed`."""
    return "order." + re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
