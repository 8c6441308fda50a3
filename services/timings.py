"""Where a command's time goes, measured by the processes themselves, not guessed.

The engine puts an `engine-timing` header on each reply, in the syntax of HTTP's
`Server-Timing` (`name;dur=milliseconds`, comma-separated):

- `queue`: from the command record's Kafka timestamp (set by its producer) to the start of the
  engine's work on its batch: the broker, the fetch, and waiting behind earlier batches;
- `load`: reading the batch's orders and idempotency keys; `outside`: the provider, chain and
  resource lookups the batch needed; `save`: deciding and saving the batch in one transaction;
- `batch;desc=N`: how many commands shared the batch; `sent;desc=T`: when the reply was handed to
  the producer (milliseconds since the epoch), so a client can tell the reply's own transit.

The gateway answers with a `Server-Timing` header of its own stages and the engine's (the
REST bench reads both). Clocks are compared only between processes on one machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ENGINE_TIMING = "engine-timing"


@dataclass(frozen=True)
class Stages:
    """The engine's stages of one batch, in milliseconds."""

    load: float = 0.0
    outside: float = 0.0
    save: float = 0.0
    batch: int = 1


def now_ms() -> float:
    return time.time() * 1000


def engine_timing(stages: Stages, *, queued: float, sent: float) -> str:
    return server_timing(
        {"queue": queued, "load": stages.load, "outside": stages.outside, "save": stages.save},
        batch=stages.batch,
        sent=round(sent, 1),
    )


def server_timing(durations: Mapping[str, float], **descriptions: object) -> str:
    """`name;dur=ms` for each duration, then `name;desc=value` for each description."""
    parts = [f"{name};dur={max(value, 0.0):.1f}" for name, value in durations.items()]
    parts.extend(f"{name};desc={value}" for name, value in descriptions.items())
    return ", ".join(parts)


def parse_timing(header: str | None) -> dict[str, float]:
    """Every `dur` and numeric `desc` of a Server-Timing header, by name (unknown text skipped)."""
    found: dict[str, float] = {}
    for entry in (header or "").split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key in ("dur", "desc"):
                try:
                    found[name] = float(value)
                except ValueError:
                    continue
    return found


def merge(headers: Iterable[str]) -> str:
    return ", ".join(header for header in headers if header)
