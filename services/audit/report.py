"""Running the checks of services/audit/verify.py over the stored log, whole or for one order,
and what `otc audit verify` prints."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from services.audit.checkpoints import Recorded
from services.audit.records import Examined, StoredLog
from services.audit.verify import (
    MAX_LISTED,
    Break,
    Chains,
    checkpoint_break,
    checkpoint_chain,
    checkpoint_range,
    in_ranges,
)


@dataclass(frozen=True)
class Anchor:
    """A checkpoint's hash kept outside the database (`--anchor SEQUENCE:HASH`)."""

    sequence: int
    checkpoint_hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        sequence, _, checkpoint_hash = text.partition(":")
        if not sequence.isdigit() or len(checkpoint_hash) != 64:  # noqa: PLR2004 - SHA-256 hex
            raise ValueError(f"an anchor is SEQUENCE:HASH (64 hex digits), not {text!r}")
        return cls(int(sequence), checkpoint_hash.lower())


@dataclass
class Report:
    scope: str
    records: int = 0
    order_events: int = 0
    chained: int = 0
    unchained: int = 0
    orders: int = 0
    checkpoints: int = 0
    after_last_checkpoint: int = 0
    head: Recorded | None = None
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def as_json(self) -> dict[str, object]:
        ordered = sorted(self.breaks, key=lambda b: b.position)
        return {
            "ok": self.ok,
            "scope": self.scope,
            "firstBreak": ordered[0].as_json() if ordered else None,
            "breakCount": len(ordered),
            "breaks": [b.as_json() for b in ordered[:MAX_LISTED]],
            "records": self.records,
            "orders": self.orders,
            "orderEvents": self.order_events,
            "chained": self.chained,
            "unchained": self.unchained,
            "checkpoints": self.checkpoints,
            "afterLastCheckpoint": self.after_last_checkpoint,
            "head": None if self.head is None else self.head.as_json(),
        }


def anchored(recorded: Sequence[Recorded], anchors: Sequence[Anchor]) -> list[Break]:
    by_sequence = {item.checkpoint.sequence: item for item in recorded}
    breaks = []
    for anchor in anchors:
        item = by_sequence.get(anchor.sequence)
        if item is None:
            breaks.append(Break(0, f"anchored checkpoint {anchor.sequence} is gone"))
        elif item.checkpoint.digest() != anchor.checkpoint_hash:
            breaks.append(
                checkpoint_break(
                    item.checkpoint,
                    "it does not hash to the anchor kept outside",
                    expected=anchor.checkpoint_hash,
                    found=item.checkpoint.digest(),
                )
            )
    return breaks


def verify_log(
    stored: StoredLog, recorded: Sequence[Recorded], anchors: Sequence[Anchor] = ()
) -> Report:
    """The whole log, in one pass in log order (memory: one head per order)."""
    report = Report("log", checkpoints=len(recorded), head=recorded[-1] if recorded else None)
    report.breaks += checkpoint_chain(recorded) + anchored(recorded, anchors)
    chains = Chains()

    def examined() -> Iterator[Examined]:
        for record in stored.records():
            item = stored.examine(record)
            report.records += 1
            report.breaks.extend(chains.see(item))
            yield item

    for checkpoint, group in in_ranges(examined(), recorded):
        if checkpoint is None:
            report.after_last_checkpoint += len(group)
        else:
            leaves = [item.leaf for item in group]
            report.breaks += checkpoint_range(checkpoint.checkpoint, leaves, chains.chain_start)
    count(report, chains)
    return report


def verify_order(
    stored: StoredLog,
    recorded: Sequence[Recorded],
    order_id: UUID,
    anchors: Sequence[Anchor] = (),
) -> Report | None:
    """One order's chain and every checkpoint over one of its events (None: no such order).
    A deleted newest event of an order is found only by the whole log's check."""
    records = stored.of_order(order_id)
    if not records:
        return None
    report = Report(
        str(order_id), checkpoints=len(recorded), head=recorded[-1] if recorded else None
    )
    report.breaks += checkpoint_chain(recorded) + anchored(recorded, anchors)
    chains = Chains(chain_start=log_chain_start(stored, recorded))
    for record in records:
        report.records += 1
        report.breaks += chains.see(stored.examine(record))
    previous_start: int | None = None
    for item in recorded:
        checkpoint = item.checkpoint
        covered = [r for r in records if checkpoint.covers(r.notification_id)]
        if covered:
            leaves = [
                stored.examine(r).leaf
                for r in stored.records(checkpoint.after_id, checkpoint.last_id)
            ]
            report.breaks += checkpoint_range(checkpoint, leaves, previous_start)
        previous_start = checkpoint.chain_start
    last_id = recorded[-1].checkpoint.last_id if recorded else 0
    report.after_last_checkpoint = sum(1 for r in records if r.notification_id > last_id)
    count(report, chains)
    return report


def log_chain_start(stored: StoredLog, recorded: Sequence[Recorded]) -> int | None:
    """The log's first chained event: as the latest checkpoint records it, else the first in
    the events after it."""
    latest = recorded[-1].checkpoint if recorded else None
    if latest is not None and latest.chain_start is not None:
        return latest.chain_start
    after = 0 if latest is None else latest.last_id
    for record in stored.records(after):
        if stored.examine(record).chained:
            return record.notification_id
    return None


def count(report: Report, chains: Chains) -> None:
    report.chained, report.unchained = chains.chained, chains.unchained
    report.order_events = chains.chained + chains.unchained + chains.unreadable
    report.orders = len(chains.heads)
