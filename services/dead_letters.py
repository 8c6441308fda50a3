"""Dead letters: a message a consumer cannot handle goes on to a `.dlq` topic as its own bytes,
under its own key, with where it came from and why (DESIGN.md: topics). `otc dlq` lists and
replays them. One shape for the engine (`otc.commands.dlq`), the treasury workers and the
webhook dispatcher (`otc.order-events.dlq`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.contracts import ERROR_HEADER

WORKER_HEADER = "worker"
"""Which consumer of a shared topic dead-lettered the message (a worker, the dispatcher)."""


@dataclass(frozen=True)
class KafkaRecord:
    """A message as it came off Kafka: its bytes (dead-lettered as they are) and where."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @classmethod
    def of(cls, raw: Any) -> KafkaRecord:  # noqa: ANN401 - aiokafka records are untyped
        return cls(
            value=bytes(raw.value or b""),
            key=None if raw.key is None else bytes(raw.key),
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            headers=tuple((k, bytes(v)) for k, v in raw.headers or () if v is not None),
        )


DeadLetter = Callable[[KafkaRecord, str], Awaitable[None]]
"""`dead_letter(record, error)` sends `record` to its dead-letter topic with `error`."""


def dead_letter_headers(
    record: KafkaRecord, error: str, *, consumer: str | None = None
) -> dict[str, str]:
    """The headers of a dead letter: why (cut to 1000 characters), and where it came from."""
    headers = {
        ERROR_HEADER: error[:1000],
        "original_topic": record.topic,
        "original_partition": str(record.partition),
        "original_offset": str(record.offset),
    }
    if consumer is not None:
        headers[WORKER_HEADER] = consumer
    return headers


def summarise(error: BaseException) -> str:
    """One line on an error, for a log line or a dead letter's header."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    return f"{type(error).__name__}: {error}"[:500]
