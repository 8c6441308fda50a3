"""Tamper-evident history: SHA-256 hashes over a canonical form of each event, chained per order,
and checkpoints over ranges of the notification log, chained to each other.

Pure: the hashes of events and checkpoints are functions of their data and nothing else (no
clock, no I/O). The same functions hash an event when a decision makes it, in memory, and when
`otc audit verify` reads it back from the event store, so the canonical form must not depend on
anything that differs between the two:

- the form is JSON with sorted keys and no whitespace, ASCII only;
- null, booleans, integers and strings are JSON's own; every other value is a pair
  `[tag, payload]` (lists and maps included), so that no two values of different types share a
  form (the text "1" and the integer 1, a UUID and its string);
- a `Decimal` is its exact string (`str`, a function of sign, digits and exponent: 100.00 and
  100.0 are different amounts here, since amounts carry their currency's places);
- a `datetime` is the instant in UTC with microseconds (the stored form keeps the offset, not a
  named zone; the instant is the fact); a naive datetime has no instant and is refused;
- a `UUID` is its lowercase hyphenated string;
- tuples and lists are the same (JSON keeps only lists); dict keys must be strings;
- floats are refused: the model has none, and money is never a float.

An event's hash covers its class name (the qualified name, as in its stored topic), its class
version and every field but the hash itself, including its order id, version, time and
`previous_hash`, the hash of the order's event before it: each order's history is a hash chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

EVENT_HASH = "event_hash"
PREVIOUS_HASH = "previous_hash"
CHAIN_CLASS_VERSION = 3
"""The class version of `Order.Event` from which events carry the chain's two fields."""


def tagged(value: object) -> object:
    """A value in its canonical JSON form, recursively (see `ENCODERS`)."""
    encode = ENCODERS.get(type(value))
    if encode is None:
        encode = encoder_of(value)
    return encode(value)


def encoder_of(value: object) -> Callable[[Any], object]:
    """The encoder of a value of a subclass (a StrEnum is a str); bool before int."""
    for kind, encode in ENCODERS.items():
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return encode
    raise TypeError(f"no canonical form for a {type(value).__name__}: {value!r}")


def key_of(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a mapping key must be a string, not {key!r}")
    return str.__str__(key)


def utc_instant(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        raise TypeError(f"a naive datetime has no instant: {moment!r}")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


ENCODERS: dict[type, Callable[[Any], object]] = {
    type(None): lambda v: v,
    bool: lambda v: v,
    int: int,
    str: str.__str__,
    Decimal: lambda v: ["decimal", str(v)],
    UUID: lambda v: ["uuid", str(v)],
    datetime: lambda v: ["time", utc_instant(v)],
    list: lambda v: ["list", [tagged(item) for item in v]],
    tuple: lambda v: ["list", [tagged(item) for item in v]],
    dict: lambda v: ["map", {key_of(key): tagged(item) for key, item in v.items()}],
}
"""How each type is written. JSON's own null, booleans, integers and strings stand for
themselves; everything else is an array `[tag, payload]` (lists and maps too, so that an
array is always a tag and its payload). A subclass is written as its base (a StrEnum as its
string); `bool` is found before `int`, its base class."""


def canonical_form(type_name: str, class_version: int, fields: Mapping[str, object]) -> bytes:
    """The bytes an event's hash is taken over: its type, class version and fields (the hash
    field itself left out)."""
    body = {
        "type": type_name,
        "classVersion": class_version,
        "fields": {key_of(k): tagged(v) for k, v in fields.items() if k != EVENT_HASH},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(type_name: str, class_version: int, fields: Mapping[str, object]) -> str:
    """The SHA-256 (hex) of an event's canonical form."""
    return hashlib.sha256(canonical_form(type_name, class_version, fields)).hexdigest()


def event_digest(event: object) -> str:
    """The hash of an event object: its class's qualified name and version, and its fields."""
    cls = type(event)
    return digest(cls.__qualname__, getattr(cls, "class_version", 1), vars(event))


def type_name_of(topic: str) -> str:
    """The qualified class name in an eventsourcing topic (`domain.order:Order.Quoted`)."""
    return topic.rpartition(":")[2]


def stored_digest(
    topic: str, originator_id: UUID, originator_version: int, state: Mapping[str, object]
) -> str:
    """The hash of an event read back from the store: its topic's class name, the class version
    it was stored at (1 if the state names none) and its decoded state, with the order id and
    version of its row. Equal to `event_digest` of the event as it was made."""
    fields = dict(state)
    class_version = fields.pop("class_version", 1)
    if not isinstance(class_version, int):
        raise TypeError(f"class_version is not an integer: {class_version!r}")
    fields["originator_id"] = originator_id
    fields["originator_version"] = originator_version
    return digest(type_name_of(topic), class_version, fields)


def record_digest(topic: str, state: bytes) -> str:
    """The hash of a stored event that carries no hash of its own (an idempotency key's, or an
    order's from before the chain): its topic and stored bytes."""
    return hashlib.sha256(topic.encode() + b"\x00" + state).hexdigest()


def id_ranges(ids: Iterable[int]) -> str:
    """Ascending notification ids as runs: `1-4,6,9-10` (the log's ids may have gaps)."""
    runs: list[list[int]] = []
    for notification_id in ids:
        if runs and notification_id == runs[-1][1] + 1:
            runs[-1][1] = notification_id
        else:
            runs.append([notification_id, notification_id])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def ids_in(ranges: str) -> list[int]:
    """The ids of `id_ranges` text."""
    ids: list[int] = []
    for run in filter(None, ranges.split(",")):
        first, _, last = run.partition("-")
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


@dataclass(frozen=True)
class Leaf:
    """One stored event as a checkpoint covers it: where it is in the log, whose it is, and its
    hash (`stored_digest` for a chained order event, `record_digest` for any other)."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    digest: str
    chained: bool

    def line(self) -> bytes:
        fields = (self.notification_id, self.originator_id, self.originator_version, self.digest)
        return " ".join(str(field) for field in fields).encode() + b"\n"


@dataclass(frozen=True)
class Coverage:
    """What a checkpoint records of the events of its range, in log order."""

    last_id: int
    event_count: int
    notification_ids: str
    events_digest: str
    first_chained: int | None


def coverage_of(leaves: Sequence[Leaf], last_id: int) -> Coverage:
    """The coverage of a range ending at `last_id` whose events are `leaves`."""
    running = hashlib.sha256()
    for leaf in leaves:
        running.update(leaf.line())
    return Coverage(
        last_id=last_id,
        event_count=len(leaves),
        notification_ids=id_ranges(leaf.notification_id for leaf in leaves),
        events_digest=running.hexdigest(),
        first_chained=next((leaf.notification_id for leaf in leaves if leaf.chained), None),
    )


@dataclass(frozen=True)
class Checkpoint:
    """The notification log's events in (after_id, last_id], hashed, chained to the checkpoint
    before it (`previous_hash`; None for the first, sequence 1). `chain_start` is the first
    chained event of the log up to here (None while there is none): an unchained order event
    after it is a break."""

    sequence: int
    after_id: int
    last_id: int
    event_count: int
    notification_ids: str
    events_digest: str
    chain_start: int | None
    previous_hash: str | None
    written_at: datetime

    def digest(self) -> str:
        body = {
            "sequence": self.sequence,
            "afterId": self.after_id,
            "lastId": self.last_id,
            "eventCount": self.event_count,
            "notificationIds": self.notification_ids,
            "eventsDigest": self.events_digest,
            "chainStart": self.chain_start,
            "previousHash": self.previous_hash,
            "writtenAt": utc_instant(self.written_at),
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def covers(self, notification_id: int) -> bool:
        return self.after_id < notification_id <= self.last_id


def next_checkpoint(
    previous: Checkpoint | None, coverage: Coverage, written_at: datetime
) -> Checkpoint:
    """The checkpoint after `previous` (None: the first) over (previous.last_id, last_id]."""
    chain_start = None if previous is None else previous.chain_start
    return Checkpoint(
        sequence=1 if previous is None else previous.sequence + 1,
        after_id=0 if previous is None else previous.last_id,
        last_id=coverage.last_id,
        event_count=coverage.event_count,
        notification_ids=coverage.notification_ids,
        events_digest=coverage.events_digest,
        chain_start=coverage.first_chained if chain_start is None else chain_start,
        previous_hash=None if previous is None else previous.digest(),
        written_at=written_at,
    )
