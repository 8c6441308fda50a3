"""Builds the `order_list` rows from the `Order` events of the notification log.

`RowDraft.apply` is the whole of the logic and pure: it folds one event into an order's row the
way `Order.evolve` folds it into the aggregate, so the row at a version equals `OrderView.of` of
the order at that version. `row_after` applies one event, `fold_page` a page of many orders'
events (one view made per order, however many events it has there). Statuses come from
`domain.order.status_after`, the one lifecycle table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.failures import failure_of
from domain.order import Order, Side, Status, status_after
from domain.views import OpsFacts, OrderView
from projections.order_list.view import OrderListRow, OrderListView


class MissingEventsError(Exception):
    """An event does not follow the row's version: applying it would build a wrong row."""


def row_after(row: OrderListRow | None, event: Order.Event, position: int) -> OrderListRow:
    """The order's row once `event`, found at notification `position`, is applied to `row`.

    An event the row already reflects (its version is not newer) leaves the row as it is.
    """
    return RowDraft(row).apply(event, position).row()


NO_CUSTOMER = UUID(int=0)


class RowDraft:
    """One order's row while events are applied to it, in version order: the public view's
    fields in a dict, made into an `OrderView` once at the end, however many events a page has
    for the order."""

    __slots__ = ("customer_id", "fields", "from_quote", "ops", "original", "position", "version")

    def __init__(self, row: OrderListRow | None) -> None:
        self.original = row
        self.fields: dict[str, Any] | None = None
        """The view's fields, once an event changed them."""
        self.from_quote = False
        """Whether the Quoted event was applied here (else the original view is changed)."""
        self.customer_id = NO_CUSTOMER if row is None else row.customer_id
        self.version = 0 if row is None else row.version
        self.position = 0 if row is None else row.position
        self.ops = OpsFacts() if row is None else row.ops

    def apply(self, event: Order.Event, position: int) -> RowDraft:
        version = event.originator_version
        if self.version and version <= self.version:
            return self
        if isinstance(event, Order.Quoted):
            self.customer_id, self.fields, self.from_quote = event.customer_id, quoted(event), True
            self.ops = OpsFacts()
        else:
            if not self.version or version != self.version + 1:
                have = f"version {self.version}" if self.version else "no row"
                raise MissingEventsError(
                    f"order {event.originator_id}: {type(event).__name__} is version "
                    f"{version}, the view has {have}"
                )
            fields = self._fields()
            fields.update(changes_of(event, fields))
            fields["status"] = (
                status_after(type(event).__name__, fields["side"]) or fields["status"]
            )
            fields["updated_at"] = event.timestamp
            self.ops = self.ops.after(event)
            fields["failure_reason"] = failure_of(fields["status"], self.ops.failure_reason)
        self.version, self.position = version, position
        return self

    def row(self) -> OrderListRow:
        """The row now: the original one itself when no event changed it."""
        if self.fields is None:
            if self.original is None:
                raise ValueError("no event was applied to a draft of no row")
            return self.original
        if self.from_quote or self.original is None:
            view = OrderView(**self.fields)
        else:
            view = self.original.view.model_copy(update=self.fields)
        return OrderListRow(self.customer_id, view, self.version, self.position, self.ops)

    def _fields(self) -> dict[str, Any]:
        if self.fields is None:
            self.fields = dict(self.row().view)
        return self.fields


def quoted(event: Order.Quoted) -> dict[str, Any]:
    """The public view's fields when an order is quoted."""
    side = Side(event.side)
    return {
        "id": event.originator_id,
        "quote_id": event.originator_id,
        "side": side,
        "status": Status.QUOTED,
        "source_id": event.source_id,
        "source_currency": side.source_currency,
        "source_amount": event.source_amount,
        "destination_id": event.destination_id,
        "destination_currency": side.destination_currency,
        "destination_amount": event.destination_amount,
        "rate": event.rate,
        "fee": event.fee,
        "expires_at": event.expires_at,
        "created_at": event.timestamp,
        "updated_at": event.timestamp,
    }


def changes_of(event: Order.Event, view: Mapping[str, Any]) -> dict[str, object]:
    """The public fields an event changes besides status and updated_at, given the view's."""
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
                "indicative_rate": view["rate"],
                "indicative_destination_amount": view["destination_amount"],
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
    """The rows consecutive events change, each folded as `row_after` folds it from the
    order's row in `rows` (absent: the order has none yet). Rows the events leave as they were
    are not in the result. The live projector folds a notification at a time, the rebuild a
    page of many."""
    drafts: dict[UUID, RowDraft] = {}
    for event, position in events:
        order_id = event.originator_id
        draft = drafts.get(order_id)
        if draft is None:
            draft = drafts[order_id] = RowDraft(rows.get(order_id))
        draft.apply(event, position)
    changed: dict[UUID, OrderListRow] = {}
    for order_id, draft in drafts.items():
        row = draft.row()
        if row is not draft.original:
            changed[order_id] = row
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
        """Apply consecutive notifications in one transaction, tracked at the last one."""
        if page:
            self.process_order_events(order_events_of(page), page[-1][1])

    def process_order_events(self, events: list[PageEvent], tracking: Tracking) -> None:
        """Apply these order events, the notifications up to `tracking`'s (the others change
        no row), in one transaction: the rows they change are read, folded and written in it."""
        self.view.apply(orders_of(events), partial(fold_page, events=events), tracking)
