"""`otc audit export`: the stored log as JSON Lines, streamed a page at a time, filtered by
order, customer, time range and notification range.

Orders and notification ids are filtered in the query; customer and time are inside each
event's stored state, so those records are read and filtered here. The time range is half
open, `since <= occurredAt < until`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.hash_chain import EVENT_HASH, PREVIOUS_HASH
from domain.order import Order
from services.audit.records import StoredLog, StoredRecord
from services.contracts import event_data
from services.engine.event_store import Orders


def record(event: Any, position: int | None = None) -> dict[str, Any]:  # noqa: ANN401 - any stored event
    """One stored event for people and auditors: where, whose, what, who, and its hashes."""
    entry: dict[str, Any] = {
        "aggregateId": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__qualname__,
        "occurredAt": event.timestamp.isoformat(),
    }
    if position is not None:
        entry["position"] = position
    if isinstance(event, Order.Event):
        entry["customerId"] = str(event.customer_id)
        entry["actor"] = {"kind": event.actor_kind, "id": event.actor_id}
        entry["commandId"] = str(event.command_id)
        entry["previousHash"] = getattr(event, PREVIOUS_HASH)
        entry["eventHash"] = getattr(event, EVENT_HASH)
    entry["data"] = event_data(event)
    return entry


@dataclass(frozen=True)
class ExportFilter:
    order_ids: tuple[UUID, ...] = ()
    customer_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    """Notifications after this id (`--from N` is after N - 1)."""
    upto: int | None = None

    def keeps(self, event: Any) -> bool:  # noqa: ANN401 - any stored event
        if self.customer_id is not None and getattr(event, "customer_id", None) != self.customer_id:
            return False
        moment: datetime = event.timestamp
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until


def domain_event(orders: Orders, stored: StoredRecord) -> Any:  # noqa: ANN401 - any stored event
    return orders.mapper.to_domain_event(
        StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
        )
    )


def exported(
    orders: Orders, wanted: ExportFilter, on_record: Callable[[], None] = lambda: None
) -> Iterator[dict[str, Any]]:
    """The records the filter keeps, in log order; `on_record` is called for every record read."""
    log = StoredLog(orders)
    for stored in log.records(wanted.after, wanted.upto, wanted.order_ids):
        on_record()
        event = domain_event(orders, stored)
        if wanted.keeps(event):
            yield record(event, stored.notification_id)


def to_read(orders: Orders, wanted: ExportFilter) -> int:
    """How many records the export reads (the progress bar's total)."""
    return StoredLog(orders).count(wanted.after, wanted.upto, wanted.order_ids)


def write_lines(lines: Iterator[dict[str, Any]], out: IO[str]) -> int:
    written = 0
    for line in lines:
        out.write(json.dumps(line) + "\n")
        written += 1
    out.flush()
    return written
