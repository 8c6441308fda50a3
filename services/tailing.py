"""Tailing the event store's notification log, for the relay and the expiry sweeper.

eventsourcing's recorder subscription (LISTEN/NOTIFY with the default table lock, so no event
is skipped under concurrent writers) is a blocking iterator: a thread runs it and hands the
notifications over through a bounded queue, and the event loop takes them in batches.
Notification ids may have gaps; positions are whatever id was processed last.

A subscription does not survive its connection: when PostgreSQL restarts, the tail ends with
`SubscriptionLostError`, and its owner subscribes again after the position it recorded last.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from types import TracebackType
from typing import Any, Self

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Notification, Subscription

from services import advisory_locks
from services.resilience import SubscriptionLostError

_END = object()


class NotificationTail:
    """An async context manager: `async with NotificationTail(recorder, after) as tail`.

    Entering and leaving run in a thread, for both block (leaving joins the library's threads,
    which may be waiting out a database call). When the subscription's connection fails,
    `next_batch` raises `SubscriptionLostError` from the database error: the caller leaves the
    tail, and subscribes again from its own recorded position once the database is back.
    """

    def __init__(
        self, recorder: ApplicationRecorder, after: int | None, *, max_batch: int = 1000
    ) -> None:
        self._recorder = recorder
        self._after = after
        self._subscription: Subscription[ApplicationRecorder] | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_batch * 4)
        self._max_batch = max_batch
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name="notification-tail", daemon=True)

    async def __aenter__(self) -> Self:
        self._subscription = await asyncio.to_thread(self._recorder.subscribe, gt=self._after)
        self._subscription.__enter__()
        self._thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        subscription = self._subscription
        if subscription is None:
            return
        subscription.stop()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock the pump if it waits on a full queue
                self._queue.get_nowait()
        self._thread.join(timeout=60)
        with contextlib.suppress(Exception):  # its error, if any, was handed over already
            subscription.__exit__(None, None, None)

    def _pump(self) -> None:
        assert self._subscription is not None  # noqa: S101 - started by __aenter__
        try:
            for notification in self._subscription:
                self._queue.put(notification)
        except BaseException as error:  # noqa: BLE001 - handed to the event loop
            self._error = error
        finally:
            self._queue.put(_END)

    async def next_batch(self, wait_seconds: float = 0.5) -> list[Notification]:
        """The next notifications in order, at most `max_batch`; [] if none came in time."""
        try:
            first = await asyncio.to_thread(self._queue.get, timeout=wait_seconds)
        except queue.Empty:
            return []
        batch: list[Notification] = []
        item = first
        while True:
            if item is _END:
                self._queue.put(_END)  # every later call fails the same way
                raise SubscriptionLostError("the notification subscription ended") from self._error
            assert isinstance(item, Notification)  # noqa: S101 - only notifications are queued
            batch.append(item)
            if len(batch) >= self._max_batch:
                return batch
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch


async def create_tables(conn: psycopg.AsyncConnection[Any], *statements: str) -> None:
    """Run CREATE ... IF NOT EXISTS statements under a lock: two processes creating the same
    table at once would otherwise collide in PostgreSQL's catalog."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_locks.EVENT_STORE_SCHEMA,))
        for statement in statements:
            await conn.execute(statement)


POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS tail_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
