"""Builds the `order_list` rows from the `Order` events of the notification log.

`row_after` is the whole of the logic and pure: it folds one event into an order's row the way
`Order.evolve` folds it into the aggregate, so the row at a version equals `OrderView.of` of the
order at that version. Statuses come from `domain.order.status_after`, the one lifecycle table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.order import Order, Side, Status, status_after
from domain.views import OpsFacts, OrderView
from projections.order_list.view import OrderListRow, OrderListView


class MissingEventsError(Exception):
    """An event does not follow the row's version: applying it would build a wrong row."""


def row_after(row: OrderListRow | None, event: Order.Event, position: int) -> OrderListRow:
    """The order's row once `event`, found at notification `position`, is applied to `row`.

    An event the row already reflects (its version is not newer) leaves the row as it is.
    """
    if row is not None and event.originator_version <= row.version:
        return row
    if isinstance(event, Order.Quoted):
        return OrderListRow(
            customer_id=event.customer_id,
            view=quoted_view(event),
            version=event.originator_version,
            position=position,
            ops=OpsFacts(),
        )
    if row is None or event.originator_version != row.version + 1:
        have = "no row" if row is None else f"version {row.version}"
        raise MissingEventsError(
            f"order {event.originator_id}: {type(event).__name__} is version "
            f"{event.originator_version}, the view has {have}"
        )
    status = status_after(type(event).__name__, row.view.side) or row.view.status
    view = row.view.model_copy(
        update={**changes_of(event, row.view), "status": status, "updated_at": event.timestamp}
    )
    return replace(
        row,
        view=view,
        version=event.originator_version,
        position=position,
        ops=row.ops.after(event),
    )


def quoted_view(event: Order.Quoted) -> OrderView:
    side = Side(event.side)
    return OrderView(
        id=event.originator_id,
        quote_id=event.originator_id,
        side=side,
        status=Status.QUOTED,
        source_id=event.source_id,
        source_currency=side.source_currency,
        source_amount=event.source_amount,
        destination_id=event.destination_id,
        destination_currency=side.destination_currency,
        destination_amount=event.destination_amount,
        rate=event.rate,
        fee=event.fee,
        expires_at=event.expires_at,
        created_at=event.timestamp,
        updated_at=event.timestamp,
    )


def changes_of(event: Order.Event, view: OrderView) -> dict[str, object]:
    """The public fields an event changes besides status and updated_at."""
    match event:
        case Order.Requoted():
            return {
                "rate": event.rate,
                "fee": event.fee,
                "destination_amount": event.destination_amount,
                "expires_at": event.expires_at,
            }
        case Order.Approved():
            return {
                "indicative_rate": view.rate,
                "indicative_destination_amount": view.destination_amount,
                "rate": event.rate,
                "destination_amount": event.destination_amount,
            }
        case _:
            return {}


PageEvent = tuple[Order.Event, int]
"""An order event and the notification id it was found at."""


def orders_of(events: Iterable[PageEvent]) -> list[UUID]:
    """The orders these events are of, each once, in the order they first appear."""
    return list(dict.fromkeys(event.originator_id for event, _ in events))


def fold_page(
    rows: Mapping[UUID, OrderListRow], events: Iterable[PageEvent]
) -> dict[UUID, OrderListRow]:
    """The rows consecutive events change, each folded by `row_after` from the order's row in
    `rows` (absent: the order has none yet). Rows the events leave as they were are not in the
    result. The live projector folds a notification at a time, the rebuild a page of many."""
    changed: dict[UUID, OrderListRow] = {}
    for event, position in events:
        order_id = event.originator_id
        before = changed[order_id] if order_id in changed else rows.get(order_id)
        after = row_after(before, event, position)
        if after is not before:
            changed[order_id] = after
    return changed


def order_events_of(page: Iterable[tuple[object, Tracking]]) -> list[PageEvent]:
    return [(e, tracking.notification_id) for e, tracking in page if isinstance(e, Order.Event)]


class OrderListProjection(Projection[OrderListView]):
    """Every notification is tracked, events of other aggregates included, so that the view's
    position is the log's and `wait(application_name, notification_id)` works for any write."""

    name = "order_list"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # noqa: ANN401, ARG002 - eventsourcing's signature; nothing to project
        self.view.insert_tracking(tracking)

    @process_event.register(Order.Event)
    def _(self, domain_event: Order.Event, tracking: Tracking) -> None:
        self.process_page([(domain_event, tracking)])

    def process_page(self, page: Sequence[tuple[object, Tracking]]) -> None:
        """Apply consecutive notifications in one transaction, tracked at the last one: the
        rows they change are read, folded and written in it."""
        if not page:
            return
        events = order_events_of(page)
        self.view.apply(orders_of(events), lambda rows: fold_page(rows, events), page[-1][1])
