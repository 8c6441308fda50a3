"""What the relay publishes for an event: keyed by order, headed by the command that caused it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.contracts import CAUSED_BY, EventEnvelope
from services.relay.relay import message_of


def envelope(**data: object) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type="order.confirmed",
        order_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        side="buy",
        version=2,
        position=7,
        occurred_at=datetime.now(UTC),
        data=data,
    )


def test_an_event_is_keyed_by_its_order_and_headed_by_its_command() -> None:
    command_id = str(uuid.uuid4())
    event = envelope(commandId=command_id)

    key, value, headers = message_of(event)

    assert key == str(event.order_id).encode()
    assert EventEnvelope.model_validate_json(value) == event
    assert headers == [(CAUSED_BY, command_id.encode())]


def test_an_event_without_a_command_id_has_no_such_header() -> None:
    assert message_of(envelope())[2] == []
