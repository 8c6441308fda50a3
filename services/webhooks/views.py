"""The public order view after an event, from the event store: the order as it was at that
event's version (`OrderView.of`), exactly what the API showed at that moment.

`views_at` reads the events of many orders in one query and folds each order up to the
versions asked for, so a Kafka batch costs one round trip, not one per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder

from domain.order import Order
from domain.views import OrderView
from services.engine.event_store import Orders

Wanted = Mapping[UUID, AbstractSet[int]]
"""order id -> the versions whose views are wanted."""


def views_at(orders: Orders, wanted: Wanted) -> dict[tuple[UUID, int], OrderView]:
    """The view of each order at each wanted version; absent when the store lacks it.
    Synchronous (eventsourcing is): call it in a thread."""
    recorder = orders.recorder
    if not wanted:
        return {}
    if not isinstance(recorder, PostgresApplicationRecorder):
        return _one_by_one(orders, wanted)
    ids = list(wanted)
    events = orders.select_events(
        "JOIN unnest(%s::uuid[], %s::int[]) AS w(id, up_to)"
        " ON e.originator_id = w.id AND e.originator_version <= w.up_to"
        " ORDER BY e.originator_id, e.originator_version",
        (ids, [max(wanted[i]) for i in ids]),
    )
    found: dict[tuple[UUID, int], OrderView] = {}
    states: dict[UUID, Order] = {}
    for event in events:
        order: Order = event.mutate(states.get(event.originator_id))
        states[event.originator_id] = order
        if event.originator_version in wanted[event.originator_id]:
            found[event.originator_id, event.originator_version] = OrderView.of(order)
    return found


def _one_by_one(orders: Orders, wanted: Wanted) -> dict[tuple[UUID, int], OrderView]:
    found: dict[tuple[UUID, int], OrderView] = {}
    for order_id, versions in wanted.items():
        for version in versions:
            order = orders.order(order_id, version=version)
            if order is not None and order.version == version:
                found[order_id, version] = OrderView.of(order)
    return found
