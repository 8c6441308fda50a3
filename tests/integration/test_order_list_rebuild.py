"""`otc projections rebuild order-list` on PostgreSQL: the view rebuilt from the whole log into a
table beside the live one and swapped in, then compared with the table it replaced, row for row.
Beside a running projector: test_order_list_rebuild_live.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from domain.order import Order, Side, Status
from projections.order_list import OrderListView, projection
from services.cli import app as otc
from services.engine.event_store import Orders, orders_env
from services.projector import open_order_list, take_rebuild_lock
from services.projector.rebuild import rebuild_order_list
from services.settings import Settings
from tests.integration.test_order_list import (
    caught_up,
    customer_desk,
    place_stepwise,
    projecting,
    rows_of,
    with_key,
)
from tests.unit.test_order_list_projection import COMPLETED, confirm, drive, lapse, reject

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


# ---------------------------------------------------------------- the rebuilt rows


def test_rebuild_swaps_in_the_projected_rows_and_reports_them_equal(
    small: Settings, orders: Orders
) -> None:
    several_orders(orders)
    with projecting(small) as runner:
        caught_up(runner, orders)
    projected = rows_of(small, "order_list"), rows_of(small, "order_list_tracking")
    before = live_table_oid(small)

    result = rebuild_cli(small, "--page-size", "4")

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


def test_rebuild_in_pages_before_the_swap_gives_the_projected_rows(
    small: Settings, orders: Orders, view: OrderListView
) -> None:
    several_orders(orders)
    with projecting(small) as runner:
        end = caught_up(runner, orders)
    projected = rows_of(small, "order_list")

    report = rebuild_order_list(orders, view, page_size=3, tail=0)  # orders over 3 pages and more

    assert (report.events, report.position, report.comparison.equal) == (end, end, True)
    assert rows_of(small, "order_list") == projected


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
    odd = placed[1].id  # an order never requoted: its fee is the quote's
    quoted = projection.quoted

    def quoted_differently(event: Order.Quoted) -> dict[str, Any]:
        fields = quoted(event)
        return {**fields, "fee": fields["fee"] + 1} if event.originator_id == odd else fields

    monkeypatch.setattr(projection, "quoted", quoted_differently)

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
