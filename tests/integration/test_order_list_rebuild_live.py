"""`otc projections rebuild order-list` beside a live projector: the swap pauses the view's
writers and takes the live position; the list stays complete while the rebuild runs, and the
projector goes on writing, into the rebuilt table."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from domain.order import Order, Side, Status
from domain.views import OrderView
from projections.order_list import OrderListView
from projections.order_list.projection import fold_page
from services import advisory_locks
from services.bench.rebuild import bench_rebuild
from services.engine.event_store import Orders, orders_env
from services.projector import open_order_list
from services.projector.rebuild import rebuild_order_list
from services.settings import Settings
from tests.integration.test_order_list import (
    APP,
    PROJECTOR_READY,
    caught_up,
    customer_desk,
    place,
    place_stepwise,
    projecting,
)
from tests.integration.test_order_list_rebuild import (
    live_table_oid,
    rebuild_cli,
    several_orders,
    tables,
)
from tests.support import Process
from tests.unit.test_order_list_projection import confirm, debit

pytestmark = pytest.mark.integration


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


def assert_rows_are_the_orders(view: OrderListView, orders: Orders, placed: list[Order]) -> None:
    for order in placed:
        stored = orders.order(order.id)
        assert stored is not None
        row = view.get(order.id)
        assert row is not None, f"order {order.id} is not in the list"
        assert (row.view, row.version) == (OrderView.of(stored), stored.version)


def test_the_swap_waits_for_a_write_in_progress_and_takes_its_position(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    several_orders(orders)
    with projecting(small) as runner:
        end = caught_up(runner, orders)
    late = place(orders, customer_desk(), Side.SELL, [])
    [notification] = orders.notifications(end, end + 1, 1)
    event: Order.Event = orders.mapper.to_domain_event(notification)  # type: ignore[assignment]
    rebuilder = open_order_list(small)
    try:
        with ThreadPoolExecutor(1) as pool:
            with view.datastore.transaction(commit=True) as curs:
                # A projector's write of the late order, committed at the end of this block.
                view.take_write_lock(curs)
                view.apply_on(
                    curs,
                    [late.id],
                    partial(fold_page, events=[(event, end + 1)]),
                    Tracking(APP, end + 1),
                )
                rebuilding = pool.submit(rebuild_order_list, orders, rebuilder)
                wait_for_a_lock_wait(small)
                waited = not rebuilding.done()
            report = rebuilding.result(timeout=30)
    finally:
        rebuilder.close()

    assert waited
    assert report.position == end + 1
    assert report.comparison.equal
    assert report.comparison.rows == 6
    row = view.get(late.id)
    assert row is not None
    assert row.view.status is Status.QUOTED


def test_a_write_of_the_view_waits_while_the_swap_holds_the_writes_lock(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    order = place(orders, customer_desk(), Side.BUY, [])
    [notification] = orders.notifications(0, 1, 1)
    event: Order.Event = orders.mapper.to_domain_event(notification)  # type: ignore[assignment]
    write = partial(view.apply, [order.id], partial(fold_page, events=[(event, 1)]))
    with (
        psycopg.connect(small.conninfo(), autocommit=True) as swapping,
        ThreadPoolExecutor(1) as pool,
    ):
        with swapping.transaction():
            swapping.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.ORDER_LIST_WRITES,)
            )
            writing = pool.submit(write, Tracking(APP, 1))
            wait_for_a_lock_wait(small)
            waited = not writing.done()
        written = writing.result(timeout=10)

    assert (waited, written) == (True, True)
    assert view.get(order.id) is not None


def wait_for_a_lock_wait(settings: Settings, timeout: float = 20.0) -> None:
    """Until some transaction waits for the view's writes lock."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        for _ in range(int(timeout / 0.05)):
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = %s",
                (advisory_locks.ORDER_LIST_WRITES,),
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            threading.Event().wait(0.05)
    raise AssertionError("nothing waited for the writes lock")


def test_a_rebuild_beside_a_running_projector_keeps_the_list_complete_and_the_projector_writes_the_rebuilt_table(  # noqa: E501
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    projector = Process("services.projector", small).start()
    reader = open_order_list(small)
    stop = threading.Event()
    totals: list[int] = []
    during: list[Order] = []

    def write_orders() -> None:
        while not stop.is_set():
            during.append(place_stepwise(orders, desk, Side.BUY, [confirm, debit]))

    def read_the_list() -> None:
        while not stop.is_set():
            totals.append(reader.list_by_status(list(Status), page=1, limit=1)[1])

    try:
        projector.wait_for_log(PROJECTOR_READY)
        before = [place_stepwise(orders, desk, side, [confirm]) for side in Side for _ in range(30)]
        end = orders.recorder.max_notification_id()
        assert end is not None
        view.wait(APP, end, timeout=30)
        swapped_out = live_table_oid(small)
        with ThreadPoolExecutor(2) as pool:
            busy = [pool.submit(write_orders), pool.submit(read_the_list)]
            report = rebuild_order_list(orders, view, page_size=10, tail=20)
            stop.set()
            for done in busy:
                done.result()
        after = [place_stepwise(orders, desk, Side.SELL, [confirm]) for _ in range(5)]
        end = orders.recorder.max_notification_id()
        assert end is not None
        view.wait(APP, end, timeout=30)
    finally:
        stop.set()
        projector.stop()
        reader.close()

    assert report.comparison.equal, report.comparison
    assert report.events >= 2 * len(before)
    assert live_table_oid(small) != swapped_out
    assert totals, "the list was not read during the rebuild"
    assert min(totals) >= len(before)
    assert totals == sorted(totals), "the list lost orders during the rebuild"
    assert during, "no order was written during the rebuild"
    assert_rows_are_the_orders(view, orders, before + during + after)
    assert view.list_by_status(list(Status), page=1, limit=1)[1] == len(before + during + after)
    assert "order_list_previous" not in tables(small)


def test_projector_follows_a_concurrent_rebuild_and_stops_cleanly(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    desk = customer_desk()
    projector = Process("services.projector", small).start()
    try:
        projector.wait_for_log(PROJECTOR_READY)
        order = place_stepwise(orders, desk, Side.BUY, [confirm, debit])
        end = orders.recorder.max_notification_id()
        view.wait(APP, end, timeout=10)

        rebuilt = rebuild_cli(small)
    finally:
        projector.stop()

    assert projector.proc is not None
    assert projector.proc.returncode == 0, projector.tail()
    assert "projector: stopped" in projector.tail()
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rows equal: 1" in rebuilt.output
    row = view.get(order.id)
    assert row is not None
    assert row.view.status is Status.PENDING_APPROVAL


def test_the_rebuild_bench_rebuilds_beside_live_traffic_and_prints_its_figures(
    small: Settings,
) -> None:
    figures = bench_rebuild(small, orders_count=200, in_flight=50)

    assert figures.filled == 200 * 5
    assert figures.run.exit_code == 0, figures.run.output
    assert figures.run.events >= figures.filled
    assert figures.run.events_per_second > 0
    assert figures.traffic.totals
    assert figures.traffic.never_shrank
    assert figures.listed_after
    assert "events/s" in figures.lines()[2]
    assert figures.lines()[3].startswith("  rows equal: ")
