"""Tailing the event store's notification log, for the relay and the expiry sweeper.

eventsourcing's recorder subscription (LISTEN/NOTIFY with the default table lock, so no event
is skipped under concurrent writers) is a blocking iterator: a thread runs it and hands the
notifications over through a bounded queue, and the event loop takes them in batches.
Notification ids may have gaps; positions are whatever id was processed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from types import TracebackType
from typing import Any, Self

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Notification

from services.engine.app import SCHEMA_LOCK_KEY

_END = object()


class NotificationTail:
    def __init__(
        self, recorder: ApplicationRecorder, after: int | None, *, max_batch: int = 1000
    ) -> None:
        self._subscription = recorder.subscribe(gt=after)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_batch * 4)
        self._max_batch = max_batch
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name="notification-tail", daemon=True)

    def __enter__(self) -> Self:
        self._subscription.__enter__()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._subscription.stop()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock the pump if it waits on a full queue
                self._queue.get_nowait()
        self._thread.join(timeout=10)
        self._subscription.__exit__(exc_type, exc, tb)

    def _pump(self) -> None:
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
                raise RuntimeError("the notification subscription ended") from self._error
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
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        for statement in statements:
            await conn.execute(statement)


POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS tail_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""
