"""Read-your-writes without polling: how far the order list has got, as the projector tells it.

The projector announces every position it records on the channel `order_list_position`
(`pg_notify` in the transaction of the rows and the tracking, so PostgreSQL delivers it at
commit, when the rows are visible). The gateway holds ONE listening connection for the whole
process (`PositionListener`) and keeps the highest position heard in a `PositionWatch`; a write's
answer waits there for the position of its reply, woken by the notification that reaches it.

Nothing is lost between hearing and waiting: the listener reads the order list's position once
after each LISTEN (so a position committed while it was away is known), and a waiter compares
with the known position before it waits, on the event loop, where no notification can come in
between. While the listener is away (PostgreSQL restarting), a waiter reads the position once
itself and then waits for the listener to come back or another waiter to learn more; never past
its bound (`OTC_READ_YOUR_WRITES_SECONDS`). The answer goes out then either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from projections.order_list.view import POSITION_CHANNEL
from services.resilience import Backoff, Dependency, Outages, describe, is_outage

log = logging.getLogger(__name__)

ORDERS = "Orders"
"""The event store's application: replies give positions in its notification log."""

ReadPosition = Callable[[], Awaitable[int | None]]
"""The order list's position, read from the database (None before its first one)."""

LISTENING = f"gateway: following {POSITION_CHANNEL}"
"""Logged each time the listener (re)connects."""

IDLE_CHECK_SECONDS = 10.0
"""A listener that heard nothing this long checks its connection with a query."""


def position_reader(max_tracking_id: Callable[[str], int | None]) -> ReadPosition:
    """Reads the order list's position through the view's (synchronous) `max_tracking_id`."""

    async def read() -> int | None:
        return await asyncio.to_thread(max_tracking_id, ORDERS)

    return read


class PositionWatch:
    """The highest order-list position heard, and the writes waiting for one (one event loop)."""

    def __init__(self) -> None:
        self.reached = 0
        self.live = False
        """A listener is connected: every later position will be heard."""
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        """How many waiters wait."""
        return len(self._waiting)

    def advance(self, position: int) -> None:
        """The order list has reached `position`: wake whoever waits for it or less."""
        if position <= self.reached:
            return
        self.reached = position
        while self._waiting and self._waiting[0][0] <= position:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)

    async def caught_up(self, position: int, *, within: float, read: ReadPosition) -> bool:
        """Whether the order list reached `position` within `within` seconds. Only while no
        listener is connected does it read the position itself, once."""
        deadline = asyncio.get_running_loop().time() + within
        if self.reached >= position:
            return True
        if not self.live:
            await self._read_once(read, deadline)
        return await self._wait(position, deadline)

    async def _read_once(self, read: ReadPosition, deadline: float) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                found = await read()
        except Exception as error:  # noqa: BLE001 - best effort: the write's answer goes out anyway
            log.debug("order list position not read: %s", describe(error))
            return
        if found is not None:
            self.advance(found)

    async def _wait(self, position: int, deadline: float) -> bool:
        if self.reached >= position:
            return True
        future = asyncio.get_running_loop().create_future()
        entry = (position, next(self._order), future)
        heapq.heappush(self._waiting, entry)
        try:
            async with asyncio.timeout_at(deadline):
                await future
        except TimeoutError:
            return False
        finally:
            if future.cancelled() or not future.done():  # timed out, or the request went away
                with contextlib.suppress(ValueError):  # unless a position popped it meanwhile
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
        return True


class PositionListener:
    """The process's one LISTEN connection on `order_list_position`, feeding a `PositionWatch`:
    connected again after a backoff delay whenever PostgreSQL goes away, for as long as it runs
    (an outage is logged once, through `outages`)."""

    def __init__(
        self,
        conninfo: str,
        watch: PositionWatch,
        read: ReadPosition,
        *,
        backoff: Backoff,
        outages: Outages,
    ) -> None:
        self._conninfo = make_conninfo(conninfo, application_name="otc-gateway-positions")
        self._watch = watch
        self._read = read
        self._backoff = backoff
        self._outages = outages

    async def run(self) -> None:
        """Listen until cancelled."""
        while True:
            try:
                await self._session()
            except Exception as error:  # noqa: BLE001 - whatever it was, listen again
                if is_outage(error):
                    self._outages.failed(error, Dependency.POSTGRES)
                else:
                    log.warning("position listener failed: %s; listening again", describe(error))
            finally:
                self._watch.live = False
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(POSITION_CHANNEL)))
            found = await self._read()
            self._watch.advance(found or 0)
            self._watch.live = True
            self._backoff.reset()
            self._outages.ok(Dependency.POSTGRES)
            log.info("%s: order list at position %d", LISTENING, self._watch.reached)
            while True:
                async for notify in conn.notifies(timeout=IDLE_CHECK_SECONDS):
                    if notify.payload.isdigit():
                        self._watch.advance(int(notify.payload))
                await conn.execute("SELECT 1")


@contextlib.asynccontextmanager
async def listening(listener: PositionListener) -> AsyncIterator[None]:
    """Run the listener in a task for the duration of the block (the gateway's lifespan)."""
    task = asyncio.create_task(listener.run(), name="order-list-positions")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
