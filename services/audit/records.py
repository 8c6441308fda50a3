"""The event store as it is stored, for the audit: rows with their notification ids, decoded
without upcasting, and each one hashed as domain/hash_chain.py says.

Nothing here trusts what it reads: a row whose topic names no order event is an "other" record
(hashed as its bytes), a state that does not decode is a problem of that row, and a chained
order event's hash is recomputed from its stored fields, never taken from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic

from domain.hash_chain import (
    CHAIN_CLASS_VERSION,
    EVENT_HASH,
    PREVIOUS_HASH,
    Leaf,
    record_digest,
    stored_digest,
)
from domain.order import Order
from services.engine.event_store import Orders

PAGE = 1000


def order_event_topics() -> frozenset[str]:
    """The stored topics of every order event class."""
    found: set[str] = set()
    pending: list[type[Any]] = [Order.Event]
    while pending:
        cls = pending.pop()
        found.add(get_topic(cls))
        pending.extend(cls.__subclasses__())
    return frozenset(found)


ORDER_TOPICS = order_event_topics()


@dataclass(frozen=True)
class StoredRecord:
    """One row of the events table, as it is."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Examined:
    """A stored record and what its bytes say: whether it is an order event and chained, the
    hashes it carries, the hash recomputed from it, and why it could not be read, if so."""

    record: StoredRecord
    is_order_event: bool
    digest: str
    chained: bool = False
    stored_hash: str | None = None
    previous_hash: str | None = None
    problem: str | None = None

    @property
    def leaf(self) -> Leaf:
        record = self.record
        return Leaf(
            notification_id=record.notification_id,
            originator_id=record.originator_id,
            originator_version=record.originator_version,
            digest=self.digest,
            chained=self.chained,
        )


class StoredLog:
    """Reads the `Orders` events table in notification order or one order at a time."""

    def __init__(self, orders: Orders) -> None:
        recorder = orders.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("the audit reads the PostgreSQL event store")
        self._recorder = recorder
        self._mapper: Mapper[UUID] = orders.mapper
        self.table = f"{recorder.datastore.schema}.{recorder.events_table_name}"

    def _rows(self, where: str, params: tuple[object, ...]) -> list[StoredRecord]:
        query = (
            "SELECT notification_id, originator_id, originator_version, topic, state"  # noqa: S608 - library identifiers
            f" FROM {self.table} {where}"
        )
        with self._recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params)
            rows: list[Any] = curs.fetchall()
        return [
            StoredRecord(
                notification_id=int(row["notification_id"]),
                originator_id=row["originator_id"],
                originator_version=int(row["originator_version"]),
                topic=str(row["topic"]),
                state=bytes(row["state"]),
            )
            for row in rows
        ]

    def page(
        self,
        after: int,
        upto: int | None = None,
        limit: int = PAGE,
        originators: Sequence[UUID] = (),
    ) -> list[StoredRecord]:
        """At most `limit` records after notification `after` (up to `upto`; of these
        originators only, if any are named), in log order."""
        where, params = self._range(after, upto, originators)
        return self._rows(f"{where} ORDER BY notification_id LIMIT {int(limit)}", params)

    def records(
        self, after: int = 0, upto: int | None = None, originators: Sequence[UUID] = ()
    ) -> Iterator[StoredRecord]:
        """Every record after `after` (up to `upto`, of these originators), in log order, read
        a page at a time."""
        while True:
            page = self.page(after, upto, originators=originators)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].notification_id

    def count(
        self, after: int = 0, upto: int | None = None, originators: Sequence[UUID] = ()
    ) -> int:
        where, params = self._range(after, upto, originators)
        query = f"SELECT count(*) AS n FROM {self.table} {where}"  # noqa: S608 - ours
        with self._recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params)
            row: Any = curs.fetchone()
        return int(row["n"])

    @staticmethod
    def _range(
        after: int, upto: int | None, originators: Sequence[UUID]
    ) -> tuple[str, tuple[object, ...]]:
        where = "WHERE notification_id > %s"
        params: list[object] = [after]
        if upto is not None:
            where += " AND notification_id <= %s"
            params.append(upto)
        if originators:
            where += " AND originator_id = ANY(%s)"
            params.append(list(originators))
        return where, tuple(params)

    def of_order(self, order_id: UUID) -> list[StoredRecord]:
        """One order's records in version order."""
        return self._rows("WHERE originator_id = %s ORDER BY originator_version", (order_id,))

    def examine(self, record: StoredRecord) -> Examined:
        return examine(record, self._mapper)


def decode(mapper: Mapper[UUID], record: StoredRecord) -> dict[str, Any]:
    """The stored state as written, before any upcast (its `class_version` included)."""
    state = record.state
    if mapper.cipher:
        state = mapper.cipher.decrypt(state)
    if mapper.compressor:
        state = mapper.compressor.decompress(state)
    decoded: dict[str, Any] = mapper.transcoder.decode(state)
    return decoded


class UnreadableError(Exception):
    """A stored order event whose bytes say nothing the audit can check."""


def examine(record: StoredRecord, mapper: Mapper[UUID]) -> Examined:
    """What a stored record's bytes say (see `Examined`)."""
    as_bytes = record_digest(record.topic, record.state)
    if record.topic not in ORDER_TOPICS:
        return Examined(record, is_order_event=False, digest=as_bytes)
    unchained = Examined(record, is_order_event=True, digest=as_bytes)
    try:
        try:
            state = decode(mapper, record)
        except Exception as error:
            raise UnreadableError(f"its stored state does not decode: {error}") from error
        return chained_event(record, state) or unchained
    except UnreadableError as error:
        return replace(unchained, problem=str(error))


def chained_event(record: StoredRecord, state: dict[str, Any]) -> Examined | None:
    """A chained order event's hashes, stored and recomputed (None: stored before the chain)."""
    class_version = state.get("class_version", 1)
    if not isinstance(class_version, int):
        raise UnreadableError(f"its stored class version is not a number: {class_version!r}")
    if class_version < CHAIN_CLASS_VERSION:
        return None
    stored_hash, previous_hash = state.get(EVENT_HASH), state.get(PREVIOUS_HASH)
    if not isinstance(stored_hash, str):
        raise UnreadableError("a chained event (class version 3 or later) without a hash")
    try:
        digest = stored_digest(record.topic, record.originator_id, record.originator_version, state)
    except TypeError as error:
        raise UnreadableError(f"its stored state has no canonical form: {error}") from error
    return Examined(
        record,
        is_order_event=True,
        digest=digest,
        chained=True,
        stored_hash=stored_hash,
        previous_hash=previous_hash if isinstance(previous_hash, str) else None,
    )
