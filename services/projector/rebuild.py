"""`order_list` rebuilt beside the live table at database speed, while the projector runs.

1. A fresh `order_list_rebuild` (and tracking table) beside the live `order_list`.
2. The notification log is read in pages of `PAGE_SIZE` up to the live view's position (the
   next page read while one is applied), only the order events decoded. Each page is folded per
   order in memory by the projection's own `fold_page` and written in one transaction (while
   the next page is decoded): rows new to the table copied in (COPY), rows of orders begun in an
   earlier page upserted, the rebuild's position tracked with them. The page's transaction does
   not wait for the disk: a crash loses only the rebuild. Pages follow until the rebuilt table
   is at most `tail` notifications behind the live one, which the projector keeps serving and
   moving on meanwhile.
3. One transaction takes the view's writes lock exclusively, so the projector pauses before its
   next write; applies the last notifications up to the live position; compares both tables row
   for row; and swaps them (`projections.order_list.shadow`). The projector then goes on writing,
   into the rebuilt table.
4. When both were equal the previous table is dropped; otherwise it is kept as
   `order_list_previous`, for a look at what differed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from time import perf_counter, process_time
from typing import cast
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking
from eventsourcing.utils import resolve_topic

from domain.order import Order
from projections.order_list.projection import PageEvent, fold_page, orders_of
from projections.order_list.shadow import (
    Comparison,
    compare,
    drop,
    previous_of,
    recreate,
    shadow_of,
    swap,
)
from projections.order_list.view import Fold, OrderListRow, OrderListView
from services import advisory_locks
from services.engine.event_store import Orders

PAGE_SIZE = 25_000
TAIL = 1_000
"""At most this many notifications are left for the swap's transaction (the projector's pause)."""
SWAP_LOCK_TIMEOUT = "5s"
"""The longest the swap waits for a lock (a reader in the middle of a long query): every reader
of the list would queue behind it."""

OnPage = Callable[[int, int], None]
"""Called with (position reached, live position to reach) after each page."""
Write = Callable[[Collection[UUID], Fold, Tracking], bool]


@dataclass(frozen=True)
class RebuildReport:
    events: int
    """Notifications read into the rebuilt table."""
    position: int
    """The live position it was swapped in at."""
    seconds: float
    """From the start to the swap's commit, comparison included."""
    paused_seconds: float
    """The swap's transaction, during which the projector waited."""
    cpu_seconds: float
    """CPU time of this process meanwhile (all its threads): on a machine busy with other work,
    what the rebuild would take were a core its own."""
    comparison: Comparison

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def rebuild_order_list(
    orders: Orders,
    live: OrderListView,
    *,
    page_size: int = PAGE_SIZE,
    tail: int = TAIL,
    on_page: OnPage | None = None,
) -> RebuildReport:
    """Rebuild `live` from the log beside it and swap the result in (steps 1 to 4 above).

    The caller makes sure no other rebuild runs meanwhile (`services.projector`'s rebuild lock);
    a projector may run or not."""
    started, cpu_started = perf_counter(), process_time()
    shadow = shadow_of(live)
    recreate(shadow)
    pages, writes = Pages(orders, page_size, on_page), ShadowPages(shadow)
    position = 0
    with cyclic_gc_paused():
        while (target := live.max_tracking_id(orders.name) or 0) - position > tail:
            position = pages.catch_up(writes.write, position, target, in_background=True)
    swapping = perf_counter()
    with live.datastore.transaction(commit=True) as curs:
        curs.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_locks.ORDER_LIST_WRITES,))
        target = live.position_on(curs, orders.name)
        pages.catch_up(partial(shadow.apply_on, curs), position, target)
        comparison = compare(curs, live, shadow)
        swap(curs, live, shadow)
    finished, cpu_finished = perf_counter(), process_time()
    if comparison.equal:
        with live.datastore.transaction(commit=True) as curs:
            drop(curs, previous_of(live))
    return RebuildReport(
        events=pages.read,
        position=target,
        seconds=finished - started,
        paused_seconds=finished - swapping,
        cpu_seconds=cpu_finished - cpu_started,
        comparison=comparison,
    )


@dataclass
class Pages:
    """The notification log, read into the rebuilt table a page at a time."""

    orders: Orders
    size: int
    on_page: OnPage | None = None
    read: int = 0
    """Notifications read so far."""

    def catch_up(
        self, write: Write, position: int, target: int, *, in_background: bool = False
    ) -> int:
        """Apply the notifications after `position` up to `target`, a page per `write`; the
        position reached (`target`). The next page is read while this one is decoded; with
        `in_background`, a page is also decoded while the one before is written."""
        app, read = self.orders.name, self.orders.notifications
        with (
            ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as reader,
            ThreadPoolExecutor(1, thread_name_prefix="rebuild-write") as writer,
        ):
            ahead = reader.submit(read, position, target, self.size)
            written: Future[bool] | None = None
            while position < target:
                notifications = ahead.result()
                last = notifications[-1].id if notifications else target
                if last < target:
                    ahead = reader.submit(read, last, target, self.size)
                page = order_events(self.orders, notifications)
                args = (orders_of(page), partial(fold_page, events=page), Tracking(app, last))
                if written is not None:
                    written.result()
                if in_background:
                    written = writer.submit(write, *args)
                else:
                    write(*args)
                position = last
                self.read += len(notifications)
                if self.on_page is not None:
                    self.on_page(position, target)
            if written is not None:
                written.result()
        return position


class ShadowPages:
    """Writes pages into the rebuilt table, each in a transaction of its own that does not wait
    for the disk (a crash loses the rebuild, which starts afresh). Nothing else writes that
    table, so the rows of the last page's orders are kept as written: one order's events lie
    close together in the log, and the next page reads back only the orders it has not got."""

    def __init__(self, shadow: OrderListView) -> None:
        self.shadow = shadow
        self.last: dict[UUID, OrderListRow] = {}

    def write(self, order_ids: Collection[UUID], fold: Fold, tracking: Tracking) -> bool:
        known = {i: self.last[i] for i in order_ids if i in self.last}
        now: dict[UUID, OrderListRow] = {}

        def folded(rows: Mapping[UUID, OrderListRow]) -> Mapping[UUID, OrderListRow]:
            changed = fold(rows)
            now.update(rows)
            now.update(changed)
            return changed

        with self.shadow.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit = off")
            written = self.shadow.apply_on(curs, order_ids, folded, tracking, known)
        self.last = now
        return written


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pages hold tens of thousands of short-lived objects that refer to no cycle; the cyclic
    garbage collector would scan them over and over (a third of the rebuild's time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def order_events(orders: Orders, notifications: list[Notification]) -> list[PageEvent]:
    """The order events among these notifications, decoded; the others change no row, and are
    not decoded at all."""
    return [
        (cast("Order.Event", orders.mapper.to_domain_event(n)), n.id)
        for n in notifications
        if issubclass(resolve_topic(n.topic), Order.Event)
    ]
