"""The Kafka contracts: their examples are messages the models accept, and a received record
is its envelope or, when it does not parse, Unparseable with the model's own error."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from domain.commands import ActorRef
from services.contracts import (
    CommandEnvelope,
    ErrorBody,
    EventEnvelope,
    ReceivedCommand,
    ReceivedEvent,
    ReplyEnvelope,
    Unparseable,
    event_id,
    parse_event,
)

MESSAGES: list[type[BaseModel]] = [CommandEnvelope, ReplyEnvelope, ErrorBody, EventEnvelope]


def examples_of(model: type[BaseModel]) -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = model.model_json_schema()["examples"]
    return examples


@pytest.mark.parametrize("model", MESSAGES)
def test_every_example_is_a_message_its_model_accepts(model: type[BaseModel]) -> None:
    for example in examples_of(model):
        assert model.model_validate(example).model_dump(mode="json", by_alias=True) == example


@pytest.mark.parametrize("model", [*MESSAGES, ActorRef])
def test_every_field_is_described(model: type[BaseModel]) -> None:
    assert {name for name, f in model.model_fields.items() if not f.description} == set()


def test_the_event_example_has_the_id_its_order_and_version_give() -> None:
    [example] = examples_of(EventEnvelope)

    assert example["eventId"] == str(event_id(UUID(example["orderId"]), example["version"]))


def test_a_record_that_does_not_parse_is_unparseable_with_the_models_error() -> None:
    with pytest.raises(ValidationError) as raised:
        EventEnvelope.model_validate_json(b'{"type": "order.quoted"}')

    parsed = parse_event(b'{"type": "order.quoted"}')

    assert isinstance(parsed, Unparseable)
    assert parsed.error.errors() == raised.value.errors()


def test_a_batch_parses_record_by_record() -> None:
    [example] = examples_of(EventEnvelope)
    good = EventEnvelope.model_validate(example)

    batch = TypeAdapter(list[ReceivedEvent]).validate_python([b"not json", good.to_bytes()])

    assert isinstance(batch[0], Unparseable)
    assert batch[1] == good


@pytest.mark.parametrize(
    ("received", "model"), [(ReceivedCommand, CommandEnvelope), (ReceivedEvent, EventEnvelope)]
)
def test_a_received_record_is_documented_as_its_envelope(
    received: Any,  # noqa: ANN401 - an annotated type
    model: type[BaseModel],
) -> None:
    assert TypeAdapter(received).json_schema() == model.model_json_schema()
