"""How the FastStream subscribers read a batch of Kafka records.

A subscriber takes its batch typed, as a list of `ReceivedCommand` or `ReceivedEvent`
(services/contracts.py): FastStream validates each record against its envelope model, and the
AsyncAPI document shows that model. It also takes the batch's raw records (`records_of`), for
what FastStream does not give a typed body: a record that does not parse is dead-lettered as
its own bytes, with its topic, partition and offset, and the rest of the batch goes on.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaMessage
from faststream.message import StreamMessage


async def record_values(msg: StreamMessage[Any]) -> Any:  # noqa: ANN401 - FastStream's decoded body
    """The decoder of a batch subscriber: its records' values, as bytes. The envelopes parse
    them as JSON themselves; FastStream's own decoder would fail the whole batch (which would
    come again for ever) on one record whose content-type says JSON and whose value is not."""
    return msg.body


def records_of(msg: KafkaMessage) -> tuple[Any, ...]:
    """The batch's aiokafka records (untyped), in the order of its body."""
    raw = msg.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


def header(record: Any, name: str) -> str | None:  # noqa: ANN401 - aiokafka records are untyped
    """The text of one header of a record (undecodable bytes replaced), or None."""
    for key, value in record.headers or ():
        if key == name and value is not None:
            return bytes(value).decode(errors="replace")
    return None
