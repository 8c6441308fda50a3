"""Kafka message contracts of DESIGN.md section 5: versioned pydantic models, camelCase on the
wire. These are the published shapes; the aggregate's event classes never leave the engine.

Their field descriptions and examples are also the AsyncAPI document (services/asyncapi.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import to_jsonable_python

from domain.commands import COMMAND_TYPES, ActorRef, Command
from domain.errors import DomainError, ErrorCode
from domain.hash_chain import EVENT_HASH, PREVIOUS_HASH
from services.contract_examples import (
    EXAMPLE_COMMAND,
    EXAMPLE_COMMAND_ID,
    EXAMPLE_CUSTOMER_ID,
    EXAMPLE_ERROR,
    EXAMPLE_EVENT,
    EXAMPLE_ORDER_ID,
    EXAMPLE_ORDER_VIEW,
    EXAMPLE_REFUSAL,
    EXAMPLE_REPLY,
)

CORRELATION_ID = "correlation_id"
"""Matches a reply to the request a client waits on: a fresh id per send (command_client.py)."""
REPLY_TO = "reply_to"
ERROR_HEADER = "error"
TRACE_ID = "trace_id"
"""What the logs follow a chain of messages by (`otc logs`, services/logs.py): on a command the
gateway sends, its request id (`X-Request-Id`); on the engine's reply, the command's; on a
worker's outcome command, the `command_id` header of the event that asked for the movement."""
CAUSED_BY = "command_id"
"""On an order event: the id of the command that caused it (the relay reads it off the event)."""

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
    """A command on `otc.commands`, keyed by order id. Headers: `correlation_id`, and `reply_to`
    (the gateway instance waiting for the reply) when someone waits for it; `trace_id` when the
    sender knows what it follows from (a request id, or the command behind a worker's event)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_COMMAND]})

    schema_version: Literal[1] = Field(default=1, description="version of this envelope")
    command_id: UUID = Field(
        description="unique per command; redelivery repeats it",
        examples=[EXAMPLE_COMMAND_ID],
    )
    type: str = Field(
        description="the command's name: RequestQuote, ConfirmQuote, ApproveOrder, "
        "RecordSourceDebit, ... (DESIGN.md section 4)",
        examples=["RequestQuote", "ApproveOrder", "RecordPayout"],
    )
    order_id: UUID = Field(
        description="the order it is for; also the record's key", examples=[EXAMPLE_ORDER_ID]
    )
    customer_id: UUID = Field(description="the order's customer", examples=[EXAMPLE_CUSTOMER_ID])
    actor: ActorRef = Field(
        description="who sends it; the engine checks that this kind of actor may",
        examples=[EXAMPLE_COMMAND["actor"]],
    )
    idempotency_key: UUID | None = Field(
        default=None,
        description="the client's Idempotency-Key: the same key and payload is answered with "
        "the first reply, another payload is refused",
        examples=[None, "3d2b8c1e-7f4a-4e9b-a6c5-0d1e2f3a4b5c"],
    )
    issued_at: datetime = Field(
        description="when the sender issued it", examples=[EXAMPLE_COMMAND["issuedAt"]]
    )
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="the command's own fields, camelCase; amounts and rates as decimal strings",
        examples=[EXAMPLE_COMMAND["payload"], {}],
    )

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
    """Why a command was refused: what the gateway answers as a problem."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_ERROR]})

    status: int = Field(description="the HTTP status it maps to", examples=[409, 422])
    code: ErrorCode = Field(description="the stable error code", examples=["NOT_CANCELLABLE"])
    message: str = Field(
        description="for people", examples=["the order can no longer be cancelled"]
    )
    field: str | None = Field(
        default=None,
        description="the offending field, for VALIDATION_ERROR",
        examples=[None, "sourceAmount"],
    )

    @classmethod
    def of(cls, error: DomainError) -> ErrorBody:
        return cls(status=error.status, code=error.code, message=error.message, field=error.field)


class ReplyEnvelope(Contract):
    """The engine's answer to one command, on `otc.replies` for the instance in `reply_to`.
    Keyed by order id; headers `reply_to`, `correlation_id` and `trace_id` repeat the command's."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REPLY, EXAMPLE_REFUSAL]})

    schema_version: Literal[1] = Field(default=1, description="version of this envelope")
    command_id: UUID = Field(description="the command answered", examples=[EXAMPLE_COMMAND_ID])
    ok: bool = Field(description="true: `order` is set; false: `error` is set")
    order: dict[str, Any] | None = Field(
        default=None,
        description="the public order view after the command (DESIGN.md section 6)",
        examples=[EXAMPLE_ORDER_VIEW],
    )
    error: ErrorBody | None = Field(default=None, description="why the command was refused")
    position: int | None = Field(
        default=None,
        description="notification id of the last event written, for read-your-writes",
        examples=[1],
    )
    replayed: bool = Field(default=False, description="answered from an idempotency key")


class EventEnvelope(Contract):
    """A stored order event on `otc.order-events`, keyed by order id; per order in version
    order. At least once: consumers dedupe by `eventId`. Header `command_id`: the command that
    caused the event."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_EVENT]})

    schema_version: Literal[1] = Field(default=1, description="version of this envelope")
    event_id: UUID = Field(
        description="stable: derived from order id and version", examples=[EXAMPLE_EVENT["eventId"]]
    )
    type: str = Field(
        description="order.quoted, order.source_debited, ...: `order.` and the event's name",
        examples=["order.quoted", "order.source_debited", "order.paid_out"],
    )
    order_id: UUID = Field(
        description="the order; also the record's key", examples=[EXAMPLE_ORDER_ID]
    )
    customer_id: UUID = Field(description="the order's customer", examples=[EXAMPLE_CUSTOMER_ID])
    side: str = Field(description="buy (EUR -> USDC) or sell (USDC -> EUR)", examples=["buy"])
    version: int = Field(description="the order's version after this event, from 1", examples=[1])
    position: int = Field(description="notification id in the event store", examples=[1])
    occurred_at: datetime = Field(
        description="when it was stored", examples=[EXAMPLE_EVENT["occurredAt"]]
    )
    data: dict[str, Any] = Field(
        description="the event's own fields, camelCase; amounts and rates as decimal strings",
        examples=[EXAMPLE_EVENT["data"]],
    )


BASE_EVENT_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "customer_id",
        "side",
        # The hash chain is the event store's own evidence (`otc audit verify`), not published.
        PREVIOUS_HASH,
        EVENT_HASH,
    },
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


DeadLetterBody = Annotated[
    bytes,
    Field(
        title="DeadLetter",
        description="The original record's value, byte for byte (it may not parse: that can be "
        "why it is here), under the original key. Headers: `error` (why), `original_topic`, "
        "`original_partition`, `original_offset`; on otc.order-events.dlq also `worker` (who "
        "gave up); on otc.commands.dlq also the command's `reply_to` and `correlation_id`.",
    ),
]
"""What a dead-letter topic carries (DESIGN.md section 5)."""


@dataclass(frozen=True)
class Unparseable:
    """A record of a batch that is not a valid envelope. Never sent: the subscriber dead-letters
    the record with `error` and goes on with the rest of the batch."""

    error: ValidationError


E = TypeVar("E", bound=Contract)


def parsed_as(model: type[E]) -> Callable[[object], E | Unparseable]:
    """`model` from a record's value (JSON bytes), or Unparseable; never raises."""

    def parse(value: object) -> E | Unparseable:
        try:
            if isinstance(value, bytes | bytearray | str):
                return model.model_validate_json(value)
            return model.model_validate(value)
        except ValidationError as error:
            return Unparseable(error)

    return parse


parse_command = parsed_as(CommandEnvelope)
parse_event = parsed_as(EventEnvelope)

# One record of a batch, as a FastStream batch subscriber receives it. FastStream validates a
# batch's body as a whole: a list of envelopes would fail, and be redelivered for ever, on one
# bad record. These validate each record alone and never fail; their JSON schema, hence the
# AsyncAPI document, is the envelope's.
ReceivedCommand = Annotated[
    CommandEnvelope | Unparseable,
    PlainValidator(parse_command, json_schema_input_type=CommandEnvelope),
]
ReceivedEvent = Annotated[
    EventEnvelope | Unparseable,
    PlainValidator(parse_event, json_schema_input_type=EventEnvelope),
]
