"""The `order_list` read model on PostgreSQL: built by eventsourcing's projection runner from the
`Orders` notification log, exactly once, listed per customer and per status. Its rebuild:
test_order_list_rebuild.py."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.projection import ProjectionRunner
from psycopg import sql

from domain.idempotency import IdempotencyKey
from domain.order import Order, Side, Status
from domain.views import OrderView
from projections.order_list import OrderListProjection, OrderListView
from services.engine.event_store import Orders, orders_env
from services.projector import open_order_list, projector_env
from services.settings import Settings
from tests.support import Process
from tests.unit.test_order_list_projection import (
    COMPLETED,
    T0,
    Desk,
    Step,
    approve,
    cancel,
    confirm,
    debit,
    drive,
    lapse,
    payout_fails,
    refund,
    reject,
    requote,
)

pytestmark = pytest.mark.integration

APP = Orders.name
PROJECTOR_READY = "projector: following"

Runner = ProjectionRunner[Orders, OrderListView]


@pytest.fixture
def small(settings: Settings) -> Settings:
    """This test's database, with small connection pools (every test opens several)."""
    return settings.model_copy(update={"pg_pool_size": 2})


@pytest.fixture
def orders(small: Settings) -> Iterator[Orders]:
    app = Orders(env=orders_env(small))
    yield app
    app.close()


@pytest.fixture
def view(small: Settings) -> Iterator[OrderListView]:
    opened = open_order_list(small)
    yield opened
    opened.close()


@contextmanager
def projecting(settings: Settings) -> Iterator[Runner]:
    with ProjectionRunner(
        application_class=Orders,
        projection_class=OrderListProjection,
        view_class=OrderListView,
        env=projector_env(settings),
    ) as runner:
        yield runner


def caught_up(runner: Runner, orders: Orders) -> int:
    end = orders.recorder.max_notification_id()
    assert end is not None
    runner.wait(end, timeout=10)
    return end


def customer_desk(minutes: float = 0) -> Desk:
    return Desk(now=T0 + timedelta(minutes=minutes))


def place(orders: Orders, desk: Desk, side: Side, steps: list[Step]) -> Order:
    order = drive(desk.quote(side), desk, steps)
    orders.save(order)
    return order


def place_stepwise(orders: Orders, desk: Desk, side: Side, steps: list[Step]) -> Order:
    """One save per step, as the engine saves one command's events at a time."""
    order = desk.quote(side)
    orders.save(order)
    for step in steps:
        drive(order, desk, [step])
        orders.save(order)
    return order


def with_key(orders: Orders, desk: Desk, order: Order) -> None:
    """Save the order with an idempotency key of its customer, in one transaction."""
    key = IdempotencyKey.use(
        customer_id=order.customer_id,
        key=uuid.uuid4(),
        fingerprint="f",
        command_id=uuid.uuid4(),
        reply={},
        now=desk.now,
    )
    orders.save(order, key)


def rows_of(settings: Settings, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.conninfo()) as conn:
        query = sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table))
        return conn.execute(query).fetchall()


def ids(rows: list[Any]) -> list[UUID]:
    return [row.order_id for row in rows]


# ---------------------------------------------------------------- rows equal the orders' views


def test_rows_equal_the_public_views_of_the_orders_at_their_versions(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    other = customer_desk(1)
    placed = [
        place(orders, desk, Side.BUY, COMPLETED[Side.BUY]),
        place(orders, desk, Side.SELL, COMPLETED[Side.SELL]),
        place(orders, desk, Side.BUY, [confirm, debit, reject, refund]),
        place(orders, other, Side.SELL, [confirm, reject]),
        place(orders, other, Side.BUY, [lapse, requote, cancel]),
        place_stepwise(orders, desk, Side.SELL, [requote, confirm, approve, debit, payout_fails]),
    ]
    last = desk.quote(Side.BUY)
    with_key(orders, desk, last)
    placed.append(last)

    with projecting(small) as runner:
        end = caught_up(runner, orders)
        later = place_stepwise(orders, other, Side.BUY, [confirm, debit])
        placed.append(later)
        caught_up(runner, orders)

    for order in placed:
        stored = orders.order(order.id)
        assert stored is not None
        row = view.get(order.id)
        assert row is not None
        assert row.view == OrderView.of(stored)
        assert (row.customer_id, row.version) == (stored.customer_id, stored.version)
        assert row.position == orders.position_of(order.id, stored.version)
    final = orders.recorder.max_notification_id()
    assert final is not None
    assert final > end
    assert view.max_tracking_id(APP) == final
    assert view.get(uuid.uuid4()) is None


def test_every_notification_is_tracked_so_a_write_can_wait_for_the_view(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    with projecting(small):
        order = desk.quote(Side.BUY)
        with_key(orders, desk, order)  # the key's event comes last in the log
        end = orders.recorder.max_notification_id()
        assert end is not None

        view.wait(APP, end, timeout=10)

        assert view.max_tracking_id(APP) == end
        with pytest.raises(TimeoutError):
            view.wait(APP, end + 1, timeout=0.3)


def test_processes_opening_the_view_together_on_a_fresh_database_all_succeed(
    small: Settings,
) -> None:
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def open_and_close() -> None:
        start.wait()
        try:
            open_order_list(small).close()
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert rows_of(small, "order_list_tracking") == [("__migration__", 1)]


# ---------------------------------------------------------------- listings


def test_customer_listing_is_newest_first_with_the_total_of_that_customer_only(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    ada, bob = customer_desk(), customer_desk()
    adas = []
    for minute in range(5):
        ada.now = T0 + timedelta(minutes=minute)
        adas.append(place(orders, ada, Side.BUY, []))
    ada.now = T0 + timedelta(minutes=10)
    same_time = [place(orders, ada, Side.SELL, []) for _ in range(2)]
    bobs = [place(orders, bob, Side.SELL, [confirm]) for _ in range(2)]
    with projecting(small) as runner:
        caught_up(runner, orders)

    ada_id, bob_id = UUID(ada.customer.id), UUID(bob.customer.id)
    pages = [view.list_for_customer(ada_id, page=page, limit=3) for page in (1, 2, 3, 4)]
    everything, total = view.list_for_customer(ada_id, page=1, limit=100)

    newest_first = sorted(same_time, key=lambda o: o.id, reverse=True) + adas[::-1]
    assert total == 7
    assert ids(everything) == [o.id for o in newest_first]
    assert [ids(rows) for rows, _ in pages] == [
        [o.id for o in newest_first[0:3]],
        [o.id for o in newest_first[3:6]],
        [o.id for o in newest_first[6:7]],
        [],
    ]
    assert {total for _, total in pages} == {7}
    assert {o.id for o in bobs} == set(ids(view.list_for_customer(bob_id, page=1, limit=10)[0]))
    assert view.list_for_customer(uuid.uuid4(), page=1, limit=10) == ([], 0)


def test_status_listing_is_the_pending_queue_oldest_first(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk, other = customer_desk(), customer_desk(30)
    pending = [
        place(orders, desk, Side.SELL, [confirm]),
        place(orders, desk, Side.BUY, [confirm, debit]),
        place(orders, other, Side.SELL, [confirm]),
    ]
    place(orders, desk, Side.BUY, [confirm])
    place(orders, other, Side.BUY, COMPLETED[Side.BUY])
    quoted = place(orders, other, Side.SELL, [])
    with projecting(small) as runner:
        caught_up(runner, orders)

    queue, total = view.list_by_status([Status.PENDING_APPROVAL], page=1, limit=2)
    rest, _ = view.list_by_status([Status.PENDING_APPROVAL], page=2, limit=2)
    open_quotes, open_total = view.list_by_status(
        [Status.QUOTED, Status.REQUOTED], page=1, limit=10
    )

    assert total == 3
    assert ids(queue) + ids(rest) == [o.id for o in pending]
    assert {row.view.status for row in queue + rest} == {Status.PENDING_APPROVAL}
    assert (ids(open_quotes), open_total) == ([quoted.id], 1)
    assert view.list_by_status([], page=1, limit=10) == ([], 0)
    with pytest.raises(ValueError, match="start at 1"):
        view.list_by_status([Status.QUOTED], page=0, limit=10)


# ---------------------------------------------------------------- exactly once


def test_a_notification_applied_twice_changes_the_view_once(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    order = place_stepwise(orders, desk, Side.BUY, [confirm, debit])
    with_key(orders, desk, drive(desk.quote(Side.SELL), desk, []))
    notifications = orders.recorder.select_notifications(start=1, limit=100)
    delivered = [(orders.mapper.to_domain_event(n), Tracking(APP, n.id)) for n in notifications]
    projection = OrderListProjection(view=view)
    for event, tracking in delivered:
        projection.process_event(event, tracking)
    once = rows_of(small, "order_list"), rows_of(small, "order_list_tracking")

    for event, tracking in [*delivered, delivered[0], delivered[1]]:
        projection.process_event(event, tracking)
    projection.process_page(delivered)

    assert (rows_of(small, "order_list"), rows_of(small, "order_list_tracking")) == once
    row = view.get(order.id)
    assert row is not None
    assert (row.version, row.view.status) == (3, Status.PENDING_APPROVAL)


def test_an_older_version_of_a_row_never_replaces_a_newer_one(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    order = place_stepwise(orders, desk, Side.SELL, [confirm])
    with projecting(small) as runner:
        end = caught_up(runner, orders)
    newest = view.get(order.id)
    assert newest is not None
    stale = replace(
        newest,
        view=newest.view.model_copy(update={"status": Status.QUOTED}),
        version=newest.version - 1,
        position=newest.position - 1,
    )

    advanced = view.save([stale], Tracking(APP, end + 1))

    assert advanced
    assert view.get(order.id) == newest
    assert view.max_tracking_id(APP) == end + 1


# ---------------------------------------------------------------- the projector process


def test_projector_exits_with_an_error_when_an_event_cannot_be_applied(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    place_stepwise(orders, desk, Side.SELL, [confirm])
    view.insert_tracking(Tracking(APP, 1))  # as if the Quoted event had been applied

    projector = Process("services.projector", small).start()
    assert projector.proc is not None
    try:
        code = projector.proc.wait(timeout=30)
    finally:
        projector.stop()

    assert code == 1, projector.tail()
    assert "MissingEventsError" in projector.tail()
