"""The monitor's samples: how old the oldest event a follower has not handled is, and a sample
that cannot be taken counted and skipped while the others go on."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from domain.order import Side
from services.engine.event_store import Orders
from services.metrics import CHECK_ERRORS
from services.monitor.watch import oldest_unhandled_age, run_each
from services.resilience import Outages
from tests.metric_values import value_of
from tests.unit.strategies import T0, new_order


def store_with_two_orders() -> Orders:
    orders = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    orders.save(
        new_order(Side.BUY, "100.00", "1.08", "1.00", now=T0, order_id=uuid.uuid4()),
        new_order(
            Side.BUY, "200.00", "1.08", "1.00", now=T0 + timedelta(minutes=1), order_id=uuid.uuid4()
        ),
    )
    return orders


def test_a_caught_up_follower_is_zero_seconds_behind() -> None:
    assert oldest_unhandled_age(store_with_two_orders(), 0, datetime.now(UTC)) == 0.0


def test_a_follower_behind_is_as_old_as_the_oldest_event_it_has_not_handled() -> None:
    orders = store_with_two_orders()
    now = T0 + timedelta(minutes=10)

    assert oldest_unhandled_age(orders, 1, now) == 9 * 60
    assert oldest_unhandled_age(orders, 2, now) == 10 * 60


async def test_a_sample_that_fails_is_counted_and_the_next_one_still_runs() -> None:
    ran: list[str] = []
    before = value_of(CHECK_ERRORS, "otc_check_errors_total", check="broken")

    async def broken() -> None:
        raise psycopg.OperationalError("the server closed the connection")

    async def fine() -> None:
        ran.append("fine")

    await run_each({"broken": broken, "fine": fine}, Outages("monitor", logging.getLogger("t")))

    assert ran == ["fine"]
    assert value_of(CHECK_ERRORS, "otc_check_errors_total", check="broken") == before + 1
