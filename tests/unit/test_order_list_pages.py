"""The rebuild's fold: a page of many orders' events folded at once (`fold_page`) gives the very
rows the live projector gets folding one notification at a time, wherever the pages begin."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.order import Order, Side
from domain.views import OrderView
from projections.order_list.projection import PageEvent, fold_page, orders_of, row_after
from projections.order_list.view import OrderListRow
from tests.unit.test_order_list_projection import (
    Desk,
    Step,
    confirm,
    debit,
    drive,
    order_events,
    walks,
)

Walk = tuple[Side, list[tuple[Step, Decimal]]]


def walked(desk: Desk, walk: Walk) -> list[Order.Event]:
    side, steps = walk
    order = desk.quote(side)
    for step, rate in steps:
        desk.wait(3)
        try:
            step(order, desk, rate)
        except DomainError:
            continue
    return order_events(order)


def one_at_a_time(events: list[PageEvent]) -> dict[UUID, OrderListRow]:
    rows: dict[UUID, OrderListRow] = {}
    for event, position in events:
        rows[event.originator_id] = row_after(rows.get(event.originator_id), event, position)
    return rows


@given(
    walks=st.lists(walks(), min_size=1, max_size=4),
    interleaving=st.randoms(use_true_random=False),
    page_size=st.integers(1, 12),
)
def test_folding_pages_gives_the_rows_of_folding_one_event_at_a_time(
    walks: list[Walk], interleaving: random.Random, page_size: int
) -> None:
    desk = Desk()
    histories = [walked(desk, walk) for walk in walks]
    log: list[Order.Event] = []
    while any(histories):  # the orders' events interleaved, each order's in its own order
        history = interleaving.choice([h for h in histories if h])
        log.append(history.pop(0))
    events = [(event, position) for position, event in enumerate(log, start=1)]

    table: dict[UUID, OrderListRow] = {}
    for start in range(0, len(events), page_size):
        page = events[start : start + page_size]
        found = {i: table[i] for i in orders_of(page) if i in table}
        table.update(fold_page(found, page))

    assert table == one_at_a_time(events)


def test_a_page_returns_only_the_rows_it_changes_each_folded_from_its_stored_row() -> None:
    desk = Desk()
    buy = order_events(drive(desk.quote(Side.BUY), desk, [confirm, debit]))
    sell = order_events(drive(desk.quote(Side.SELL), desk, [confirm]))
    stored = one_at_a_time([(buy[0], 1), (buy[1], 2), (sell[0], 3)])

    changed = fold_page(stored, [(buy[1], 2), (buy[2], 4), (sell[1], 5)])

    assert set(changed) == {buy[0].originator_id, sell[0].originator_id}
    assert changed[buy[0].originator_id] == row_after(stored[buy[0].originator_id], buy[2], 4)
    assert changed[sell[0].originator_id].version == 2
    assert fold_page(changed, [(buy[2], 4)]) == {}


def test_orders_of_a_page_are_each_named_once_in_order_of_appearance() -> None:
    desk = Desk()
    buy = order_events(drive(desk.quote(Side.BUY), desk, [confirm]))
    sell = order_events(drive(desk.quote(Side.SELL), desk, []))

    assert orders_of([(sell[0], 1), (buy[0], 2), (buy[1], 3)]) == [
        sell[0].originator_id,
        buy[0].originator_id,
    ]


@given(walk=walks())
def test_the_stored_json_text_is_the_public_json(walk: Walk) -> None:
    desk = Desk()
    events = walked(desk, walk)
    view: OrderView = one_at_a_time([(e, n) for n, e in enumerate(events, 1)])[
        events[0].originator_id
    ].view

    assert json.loads(view.public_json_text()) == view.public_json()
