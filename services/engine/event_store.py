"""The event store: `Orders`, the eventsourcing application holding every order and idempotency
key in PostgreSQL, and `open_orders`, which opens it with its tables created if missing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID, SafeUUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    JSONTranscoder,
    Notification,
    Recording,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresRecorder
from psycopg.rows import tuple_row

from domain.idempotency import IdempotencyKey
from domain.order import Order
from services import advisory_locks
from services.pg import harden_datastore
from services.settings import Settings


class UUIDFromHex(UUIDAsHex):
    """The library's `UUIDAsHex`, decoding a stored id without `UUID.__init__`'s parsing of
    every spelling of a UUID: the store holds 32 hex digits, and reading them this way halves
    the cost of the two or three ids of every event (a tenth of a rebuild's time)."""

    def decode(self, data: str) -> UUID:
        if len(data) != HEX_DIGITS:
            return UUID(data)
        value = int(data, 16)
        if value < 0:
            return UUID(data)  # refused as UUID() refuses it
        decoded = object.__new__(UUID)
        object.__setattr__(decoded, "int", value)
        object.__setattr__(decoded, "is_safe", SafeUUID.unknown)
        return decoded


HEX_DIGITS = 32


class Orders(Application[UUID]):
    """Synchronous, like eventsourcing itself: call it through `asyncio.to_thread`."""

    name = "Orders"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(UUIDFromHex())

    def order(self, order_id: UUID, version: int | None = None) -> Order | None:
        try:
            found: Order = self.repository.get(order_id, version=version)
        except AggregateNotFoundError:
            return None
        return found

    def key(self, key_id: UUID) -> IdempotencyKey | None:
        try:
            found: IdempotencyKey = self.repository.get(key_id)
        except AggregateNotFoundError:
            return None
        return found

    def load_many(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """The current state of many aggregates from ONE query (a batch's working set).

        The repository would read them one round trip each; a batch of hundreds of commands
        cannot afford that. Missing ids are absent from the result.
        """
        wanted = list(set(aggregate_ids))
        recorder = self.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            found = ((i, self._get_or_none(i)) for i in wanted)
            return {i: a for i, a in found if a is not None}
        if not wanted:
            return {}
        aggregates: dict[UUID, Aggregate] = {}
        for event in self.select_events(
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version", (wanted,)
        ):
            aggregate_id: UUID = event.originator_id
            aggregates[aggregate_id] = event.mutate(aggregates.get(aggregate_id))
        return aggregates

    def select_events(self, where: str, params: tuple[object, ...]) -> list[Any]:
        """The domain events of the stored events table `e` that `where` selects (joins,
        conditions and order: trusted SQL of ours), from ONE query. PostgreSQL only."""
        recorder = self.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("select_events reads PostgreSQL")
        query = (
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"  # noqa: S608 - library identifiers
            f" FROM {recorder.datastore.schema}.{recorder.events_table_name} AS e {where}"
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params)
            rows: list[Any] = curs.fetchall()
        return [
            self.mapper.to_domain_event(
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
            for row in rows
        ]

    def order_events_after(
        self, position: int = 0, page_size: int = 1000
    ) -> tuple[list[Order.Event], int]:
        """Every order event after notification `position`, in the log's order (so each order's
        in version order), read in pages; and the position of the last notification read
        (`position` itself when there is none after it)."""
        events: list[Order.Event] = []
        while True:
            page = self.recorder.select_notifications(start=position + 1, limit=page_size)
            for notification in page:
                event = self.mapper.to_domain_event(notification)
                if isinstance(event, Order.Event):
                    events.append(event)
            if page:
                position = page[-1].id
            if len(page) < page_size:
                return events, position

    def notifications(self, after: int, upto: int, limit: int) -> list[Notification]:
        """At most `limit` notifications after position `after`, up to `upto` included: the
        rebuild's pages, read in PostgreSQL's binary format (half the time of the library's
        `select_notifications`, which reads the state as hex text)."""
        recorder = self.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            return list(
                recorder.select_notifications(
                    start=after, limit=limit, stop=upto, inclusive_of_start=False
                )
            )
        query = (
            "SELECT notification_id, originator_id, originator_version, topic, state"  # noqa: S608 - library identifiers
            f" FROM {recorder.datastore.schema}.{recorder.events_table_name}"
            " WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id LIMIT %s"
        )
        with (
            recorder.datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as curs,
        ):
            curs.execute(query, (after, upto, limit))
            return [
                Notification(
                    id=notification_id,
                    originator_id=originator_id,
                    originator_version=originator_version,
                    topic=topic,
                    state=state,
                )
                for notification_id, originator_id, originator_version, topic, state in curs
            ]

    def _get_or_none(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            found: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found

    def save_all(self, aggregates: Sequence[Aggregate]) -> list[Recording[UUID]]:
        """Every pending event of every aggregate, in one transaction."""
        return self.save(*aggregates)

    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        """The notification id of one stored event (for replies that replay an old result)."""
        recorder = self.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            return None
        query = (
            f"SELECT notification_id FROM {recorder.datastore.schema}.{recorder.events_table_name}"  # noqa: S608 - identifiers from the library
            " WHERE originator_id = %s AND originator_version = %s"
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (aggregate_id, version))
            row: Any = curs.fetchone()
        return None if row is None else int(row["notification_id"])


def orders_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**settings.postgres_env(), "CREATE_TABLE": "y", **extra}


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """Hold while creating tables. Processes that start together and all create the same tables
    would otherwise collide in PostgreSQL's catalog ("tuple concurrently updated")."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (advisory_locks.EVENT_STORE_SCHEMA,))
        yield


def open_orders(settings: Settings) -> Orders:
    """The `Orders` application, its tables created (if missing) under the schema lock."""
    with schema_lock(settings):
        orders = Orders(env=orders_env(settings))
    harden_recorder(orders.recorder, settings)
    return orders


def harden_recorder(recorder: object, settings: Settings) -> None:
    """Bound the reconnect of a PostgreSQL recorder's pool (see `services.pg`)."""
    if isinstance(recorder, PostgresRecorder):
        harden_datastore(recorder.datastore, settings)
