"""`otc audit verify`: every hash recomputed, every link followed, the first broken one named.

Three things are checked (README, "Audit you can prove"):

1. Each order's history, in version order: no version missing or repeated; each chained
   event's stored hash equal to the hash recomputed from its stored fields; its
   `previous_hash` equal to the hash of the order's event before it.
2. The checkpoints: numbered from 1 without a gap, each range starting where the one before
   ended, each checkpoint's hash recomputed from its fields, each chained to the one before.
3. Each checkpoint's range of the log recomputed from the events there now: the same
   notification ids, the same digest over their hashes, the same first chained event.

Events stored before the chain existed (order events of class version 2 or less) are unchained:
they are counted, covered by checkpoints like every other record, and not chained themselves;
an unchained order event after the log's first chained one, or after a chained event of its
own order, is a break.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from domain.hash_chain import Checkpoint, Leaf, coverage_of, ids_in
from services.audit.checkpoints import Recorded
from services.audit.records import Examined

MAX_LISTED = 20


@dataclass(frozen=True)
class Break:
    """One broken link: where (an event's notification id, order and version, or a
    checkpoint), what is wrong, and the two values that differ, when there are two."""

    position: int
    problem: str
    order_id: UUID | None = None
    version: int | None = None
    notification_id: int | None = None
    checkpoint: int | None = None
    expected: str | None = None
    found: str | None = None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "orderId": None if self.order_id is None else str(self.order_id),
            "version": self.version,
            "notificationId": self.notification_id,
            "checkpoint": self.checkpoint,
            "problem": self.problem,
            "expected": self.expected,
            "found": self.found,
        }
        return {key: value for key, value in body.items() if value is not None}


def event_break(
    examined: Examined, problem: str, expected: str | None = None, found: str | None = None
) -> Break:
    record = examined.record
    return Break(
        position=record.notification_id,
        problem=problem,
        order_id=record.originator_id,
        version=record.originator_version,
        notification_id=record.notification_id,
        expected=expected,
        found=found,
    )


def checkpoint_break(
    checkpoint: Checkpoint, problem: str, expected: str | None = None, found: str | None = None
) -> Break:
    return Break(
        position=checkpoint.last_id,
        problem=problem,
        checkpoint=checkpoint.sequence,
        expected=expected,
        found=found,
    )


@dataclass
class Head:
    """The newest event of an order seen so far: its version and stored hash. `trusted` is
    False after an event that could not be read: the next link is not judged by it."""

    version: int
    event_hash: str | None
    trusted: bool = True


@dataclass
class Chains:
    """The per-order rules (1), fed the log's order events in log order, or one order's.
    `chain_start` is the log's first chained event: learnt from the log when None."""

    chain_start: int | None = None
    heads: dict[UUID, Head] = field(default_factory=dict)
    chained: int = 0
    unchained: int = 0
    unreadable: int = 0

    def see(self, examined: Examined) -> list[Break]:
        if not examined.is_order_event:
            return []
        record = examined.record
        head = self.heads.get(record.originator_id)
        breaks = self._version(examined, head)
        if breaks and head is not None:
            head = Head(head.version, head.event_hash, trusted=False)  # one break, not two
        if examined.problem is not None:
            self.unreadable += 1
            breaks.append(event_break(examined, examined.problem))
            self.heads[record.originator_id] = Head(record.originator_version, None, trusted=False)
            return breaks
        if examined.chained:
            self.chained += 1
            if self.chain_start is None:
                self.chain_start = record.notification_id
            breaks.extend(self._links(examined, head))
        else:
            self.unchained += 1
            breaks.extend(self._unchained(examined, head))
        self.heads[record.originator_id] = Head(record.originator_version, examined.stored_hash)
        return breaks

    @staticmethod
    def _version(examined: Examined, head: Head | None) -> list[Break]:
        expected = 1 if head is None else head.version + 1
        version = examined.record.originator_version
        if version > expected:
            missing = str(expected) if version == expected + 1 else f"{expected}-{version - 1}"
            return [event_break(examined, f"version {missing} of this order is missing")]
        if version < expected:
            return [event_break(examined, f"version {version} comes after version {expected - 1}")]
        return []

    @staticmethod
    def _links(examined: Examined, head: Head | None) -> list[Break]:
        breaks = []
        if examined.stored_hash != examined.digest:
            breaks.append(
                event_break(
                    examined,
                    "its stored data does not match its hash",
                    expected=examined.stored_hash,
                    found=examined.digest,
                )
            )
        previous = None if head is None else head.event_hash
        if (head is None or head.trusted) and examined.previous_hash != previous:
            what = "no previous event" if head is None else f"version {head.version}'s hash"
            breaks.append(
                event_break(
                    examined,
                    f"its previous_hash does not match {what}",
                    expected=previous,
                    found=examined.previous_hash,
                )
            )
        return breaks

    def _unchained(self, examined: Examined, head: Head | None) -> list[Break]:
        if head is not None and head.event_hash is not None:
            return [event_break(examined, "an unchained event after chained ones of its order")]
        start = self.chain_start
        if start is not None and examined.record.notification_id > start:
            return [event_break(examined, f"an unchained event after the chain began (at {start})")]
        return []


def checkpoint_chain(recorded: Sequence[Recorded]) -> list[Break]:
    """The checkpoints' own rules (2)."""
    breaks: list[Break] = []
    previous: Checkpoint | None = None
    for item in recorded:
        checkpoint = item.checkpoint
        recomputed = checkpoint.digest()
        if item.checkpoint_hash != recomputed:
            breaks.append(
                checkpoint_break(
                    checkpoint,
                    "its stored fields do not match its hash",
                    expected=item.checkpoint_hash,
                    found=recomputed,
                )
            )
        expected = (
            (1, 0, None)
            if previous is None
            else (previous.sequence + 1, previous.last_id, previous.digest())
        )
        if checkpoint.sequence != expected[0]:
            breaks.append(checkpoint_break(checkpoint, f"checkpoint {expected[0]} is missing"))
        if checkpoint.after_id != expected[1]:
            breaks.append(
                checkpoint_break(
                    checkpoint,
                    "its range does not start where the one before ended",
                    expected=str(expected[1]),
                    found=str(checkpoint.after_id),
                )
            )
        if checkpoint.previous_hash != expected[2]:
            breaks.append(
                checkpoint_break(
                    checkpoint,
                    "its previous_hash does not match the checkpoint before",
                    expected=expected[2],
                    found=checkpoint.previous_hash,
                )
            )
        previous = checkpoint
    return breaks


def checkpoint_range(
    checkpoint: Checkpoint, leaves: Sequence[Leaf], chain_start: int | None
) -> list[Break]:
    """A checkpoint's range (3) against the events there now; `chain_start` is the log's first
    chained event as far as it is known."""
    now = coverage_of(leaves, checkpoint.last_id)
    recorded_ids, present_ids = ids_in(checkpoint.notification_ids), ids_in(now.notification_ids)
    missing = sorted(set(recorded_ids) - set(present_ids))
    added = sorted(set(present_ids) - set(recorded_ids))
    breaks = [
        *(
            checkpoint_break(checkpoint, f"notification {n}, which it covered, is gone")
            for n in missing
        ),
        *(checkpoint_break(checkpoint, f"notification {n} was not there") for n in added),
    ]
    if now.events_digest != checkpoint.events_digest and not (missing or added):
        breaks.append(
            checkpoint_break(
                checkpoint,
                f"the events of notifications {checkpoint.after_id + 1}-{checkpoint.last_id} "
                "no longer hash to its digest",
                expected=checkpoint.events_digest,
                found=now.events_digest,
            )
        )
    if checkpoint.event_count != len(recorded_ids):
        breaks.append(checkpoint_break(checkpoint, "its event count does not match its ids"))
    known_start = chain_start if chain_start is not None else now.first_chained
    if known_start is not None and known_start > checkpoint.last_id:
        known_start = None
    if checkpoint.chain_start != known_start:
        breaks.append(
            checkpoint_break(
                checkpoint,
                "the first chained event it records is not the log's",
                expected=str(checkpoint.chain_start),
                found=str(known_start),
            )
        )
    return breaks


def in_ranges(
    examined: Iterable[Examined], recorded: Sequence[Recorded]
) -> Iterator[tuple[Recorded | None, list[Examined]]]:
    """The log's records grouped by the checkpoint whose range holds them (None: after the last
    one, or in no checkpoint's range), every checkpoint yielded, in order."""
    ordered = sorted(recorded, key=lambda item: item.checkpoint.last_id)
    index, current = 0, ordered[0] if ordered else None
    group: list[Examined] = []
    for item in examined:
        notification_id = item.record.notification_id
        while current is not None and notification_id > current.checkpoint.last_id:
            yield current, group
            index += 1
            group, current = [], ordered[index] if index < len(ordered) else None
        if current is not None and current.checkpoint.covers(notification_id):
            group.append(item)
        else:
            yield None, [item]
    while current is not None:
        yield current, group
        index += 1
        group, current = [], ordered[index] if index < len(ordered) else None
