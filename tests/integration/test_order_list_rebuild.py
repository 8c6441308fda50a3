"""`otc projections rebuild order-list` on PostgreSQL: the view rebuilt from the whole log into a
table beside the live one and swapped in, while a projector serves and writes the live one;
then compared with the table it replaced, row for row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from typer.testing import CliRunner

from domain.order import Order, Side, Status
from domain.views import OrderView
from projections.order_list import OrderListRow, OrderListView, projection
from projections.order_list.projection import fold_page
from services import advisory_locks
from services.cli import app as otc
from services.engine.event_store import Orders, orders_env
from services.projector import open_order_list, take_rebuild_lock
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
    rows_of,
    with_key,
)
from tests.support import Process
from tests.unit.test_order_list_projection import COMPLETED, confirm, debit, drive, lapse, reject

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


def rebuild_cli(settings: Settings, *args: str) -> Any:  # noqa: ANN401 - click's Result
    return CliRunner().invoke(
        otc, ["projections", "rebuild", "order-list", *args], env=settings.to_env()
    )


def tables(settings: Settings) -> set[str]:
    with psycopg.connect(settings.conninfo()) as conn:
        found = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relname LIKE 'order\\_list%%'"
        ).fetchall()
    return {name for (name,) in found}


def live_table_oid(settings: Settings) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute("SELECT 'order_list'::regclass::oid").fetchone()
    assert row is not None
    return int(row[0])


def several_orders(orders: Orders) -> list[Order]:
    desk, other = customer_desk(), customer_desk(5)
    placed = []
    for side in Side:
        placed.append(place_stepwise(orders, desk, side, COMPLETED[side]))
        placed.append(place_stepwise(orders, other, side, [confirm, reject]))
    key_order = drive(desk.quote(Side.BUY), desk, [lapse])
    with_key(orders, desk, key_order)
    return [*placed, key_order]


def assert_rows_are_the_orders(view: OrderListView, orders: Orders, placed: list[Order]) -> None:
    for order in placed:
        stored = orders.order(order.id)
        assert stored is not None
        row = view.get(order.id)
        assert row is not None, f"order {order.id} is not in the list"
        assert (row.view, row.version) == (OrderView.of(stored), stored.version)


# ---------------------------------------------------------------- the rebuilt rows


def test_rebuild_swaps_in_the_projected_rows_and_reports_them_equal(
    small: Settings, orders: Orders
) -> None:
    several_orders(orders)
    with projecting(small) as runner:
        caught_up(runner, orders)
    projected = rows_of(small, "order_list"), rows_of(small, "order_list_tracking")
    before = live_table_oid(small)

    result = rebuild_cli(small, "--page-size", "4")  # orders spread over several pages

    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    assert "rows equal: 5" in result.output
    assert (rows_of(small, "order_list"), rows_of(small, "order_list_tracking")) == projected
    assert live_table_oid(small) != before
    assert tables(small) == {
        "order_list",
        "order_list_tracking",
        "order_list_pkey",
        "order_list_customer_created_idx",
        "order_list_status_created_idx",
        "order_list_attention_idx",
        "order_list_tracking_pkey",
    }


def test_rebuild_reports_the_rows_that_differ_and_keeps_the_replaced_table(
    small: Settings, orders: Orders
) -> None:
    placed = several_orders(orders)
    with projecting(small) as runner:
        caught_up(runner, orders)
    projected = rows_of(small, "order_list")
    damaged, deleted = placed[0].id, placed[1].id
    with psycopg.connect(small.conninfo()) as conn:
        conn.execute("UPDATE order_list SET status = 'cancelled' WHERE id = %s", (damaged,))
        conn.execute("DELETE FROM order_list WHERE id = %s", (deleted,))
    kept = rows_of(small, "order_list")

    result = rebuild_cli(small)

    assert result.exit_code == 3, result.output
    assert "rows differ: 2 of 5" in result.output
    assert str(damaged) in result.output
    assert str(deleted) in result.output
    assert rows_of(small, "order_list") == projected
    assert rows_of(small, "order_list_previous") == kept


def test_rebuild_reports_rows_its_fold_makes_differently(
    small: Settings, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = several_orders(orders)
    with projecting(small) as runner:
        caught_up(runner, orders)
    odd = placed[2].id
    row_after = projection.row_after

    def fold_differently(row: OrderListRow | None, event: Order.Event, at: int) -> OrderListRow:
        after = row_after(row, event, at)
        return replace(after, position=0) if event.originator_id == odd else after

    monkeypatch.setattr(projection, "row_after", fold_differently)

    result = rebuild_cli(small)

    assert result.exit_code == 3, result.output
    assert f"rows differ: 1 of 5: {odd};" in result.output


def test_rebuild_of_an_empty_log_leaves_an_empty_view(orders: Orders, view: OrderListView) -> None:
    report = rebuild_order_list(orders, view)

    assert (report.events, report.position) == (0, 0)
    assert (report.comparison.rows, report.comparison.equal) == (0, True)
    assert view.list_by_status(list(Status), page=1, limit=10) == ([], 0)


def test_a_second_rebuild_is_refused_while_one_runs(small: Settings) -> None:
    with psycopg.connect(small.conninfo(), autocommit=True) as conn:
        assert take_rebuild_lock(conn)

        result = rebuild_cli(small)

    assert result.exit_code == 2
    assert "another rebuild" in result.output


# ---------------------------------------------------------------- beside the live projector


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
