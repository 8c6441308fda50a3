"""Read-your-writes by notification on the local PostgreSQL: the order list announces each
position it records, at commit; the gateway's one listener hears it and wakes the waiting write
at once, reads the position only when it (re)connects, and comes back after PostgreSQL dropped
its connection (`pg_terminate_backend`, what a restart does to it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from projections.order_list.view import POSITION_CHANNEL, OrderListView
from services.gateway.positions import (
    ORDERS,
    PositionListener,
    PositionWatch,
    listening,
    position_reader,
)
from services.projector import open_order_list
from services.resilience import Backoff, Dependency, Outages
from services.settings import Settings

pytestmark = pytest.mark.integration

PROMPTLY = 0.5
"""Seconds within which a notified waiter must have returned (it takes milliseconds)."""


@pytest.fixture
def view(settings: Settings) -> Iterator[OrderListView]:
    view = open_order_list(settings.model_copy(update={"pg_pool_size": 2}))
    yield view
    view.close()


@dataclass
class Listened:
    watch: PositionWatch
    outages: Outages
    reads: list[int | None] = field(default_factory=list)


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the test watches state another task changes
            await asyncio.sleep(0.01)


@asynccontextmanager
async def listener(
    settings: Settings, view: OrderListView, backoff: Backoff | None = None
) -> AsyncIterator[Listened]:
    """The gateway's listener on this test's database, connected (its reads recorded)."""
    read = position_reader(view.max_tracking_id)
    listened = Listened(PositionWatch(), Outages("test-gateway", logging.getLogger(__name__)))

    async def recorded() -> int | None:
        found = await read()
        listened.reads.append(found)
        return found

    positions = PositionListener(
        settings.conninfo(),
        listened.watch,
        recorded,
        backoff=backoff or Backoff(0.05, 0.2),
        outages=listened.outages,
    )
    async with listening(positions):
        await eventually(lambda: listened.watch.live)
        yield listened


async def record(view: OrderListView, position: int) -> None:
    """What the projector does for a notification: its rows (none here) and position."""
    await asyncio.to_thread(view.insert_tracking, Tracking(ORDERS, position))


def record_silently(settings: Settings, position: int) -> None:
    """A position written without its announcement (not how the projector writes)."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO order_list_tracking VALUES (%s, %s) ON CONFLICT (application_name)"
            " DO UPDATE SET notification_id = EXCLUDED.notification_id",
            (ORDERS, position),
        )


class Reads:
    """A waiter's reads of the position, counted (a connected listener makes them needless)."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int | None:
        self.count += 1
        return None


def test_a_recorded_position_is_announced_at_commit_and_only_once(
    settings: Settings, view: OrderListView
) -> None:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(f"LISTEN {POSITION_CHANNEL}")
        view.insert_tracking(Tracking(ORDERS, 5))
        view.insert_tracking(Tracking(ORDERS, 5))  # a redelivery: not applied, not announced
        view.insert_tracking(Tracking(ORDERS, 9))
        heard = [n.payload for n in conn.notifies(timeout=1.0)]

    assert heard == ["5", "9"]


async def test_the_projectors_notification_wakes_a_waiter_promptly(
    settings: Settings, view: OrderListView
) -> None:
    waiter_reads = Reads()
    async with listener(settings, view) as listened:
        loop = asyncio.get_running_loop()
        waiter = asyncio.create_task(listened.watch.caught_up(1, within=10, read=waiter_reads))
        await asyncio.sleep(0.1)
        waited = not waiter.done()

        recorded_at = loop.time()
        await record(view, 1)
        reached = await asyncio.wait_for(waiter, 5)
        woken_after = loop.time() - recorded_at

    assert waited
    assert reached
    assert woken_after < PROMPTLY
    assert listened.reads == [None]  # once, on connecting: nothing polls
    assert waiter_reads.count == 0


async def test_without_the_notification_a_waiter_times_out(
    settings: Settings, view: OrderListView
) -> None:
    async with listener(settings, view) as listened:
        await asyncio.to_thread(record_silently, settings, 1)

        waiter_reads = Reads()
        reached = await listened.watch.caught_up(1, within=0.5, read=waiter_reads)

    assert not reached
    assert listened.watch.reached == 0
    assert waiter_reads.count == 0


async def test_after_its_connection_is_dropped_the_listener_comes_back_knowing_what_it_missed(
    settings: Settings, view: OrderListView
) -> None:
    slow_retry = Backoff(1.0, 1.0)  # away for 0.5 to 1 s: long enough to write meanwhile
    async with listener(settings, view, slow_retry) as listened:
        await asyncio.to_thread(drop_listener_connection, settings)
        await eventually(lambda: listened.outages.is_down(Dependency.POSTGRES))
        await record(view, 1)  # announced while nobody listens

        await eventually(lambda: listened.outages.recoveries[Dependency.POSTGRES] == 1)
        missed = listened.watch.reached
        waiter = asyncio.create_task(listened.watch.caught_up(2, within=10, read=Reads()))
        await record(view, 2)
        reached = await asyncio.wait_for(waiter, PROMPTLY + 1)

    assert missed == 1
    assert reached
    assert listened.reads == [None, 1]  # one read per connection


async def test_while_the_listener_is_away_a_waiter_reads_once_and_waits_for_it(
    settings: Settings, view: OrderListView
) -> None:
    slow_retry = Backoff(1.0, 1.0)
    async with listener(settings, view, slow_retry) as listened:
        await asyncio.to_thread(drop_listener_connection, settings)
        await eventually(lambda: not listened.watch.live)
        await asyncio.to_thread(record_silently, settings, 1)
        reads: list[int | None] = []
        read = position_reader(view.max_tracking_id)

        async def counted() -> int | None:
            reads.append(await read())
            return reads[-1]

        caught = await listened.watch.caught_up(1, within=5, read=counted)
        waiter = asyncio.create_task(listened.watch.caught_up(2, within=10, read=counted))
        await eventually(lambda: listened.watch.live)
        await record(view, 2)
        reached = await asyncio.wait_for(waiter, PROMPTLY + 1)

    assert caught  # its one read found the position
    assert reached  # the other waited, and the listener, back, woke it
    assert reads == [1, 1]


def drop_listener_connection(settings: Settings) -> None:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'otc-gateway-positions' AND datname = current_database()"
        ).fetchall()
    assert rows == [(True,)]
