"""Audit checkpoints: the notification log's events, a range at a time, hashed and chained to
the checkpoint before (domain/hash_chain.py), in the table `audit_checkpoints`.

The projector writes them every `audit_checkpoint_seconds` (`Checkpointer`), and
`otc audit checkpoint` on demand; one at a time, under an advisory lock. A checkpoint covers
every event from the previous one's last id to the newest committed one (at most
`audit_checkpoint_max_events`): events are inserted under the library's table lock, so no
event can still commit below an id that is already visible. A checkpoint only fixes the log as
it was when it was written: `otc audit verify` does the checking; the writer only logs an error
for an event whose stored hash it finds wrong, as an early alarm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.hash_chain import Checkpoint, coverage_of, next_checkpoint
from services import advisory_locks
from services.audit.records import Examined, StoredLog
from services.resilience import is_outage
from services.settings import Settings

log = logging.getLogger(__name__)

CHECKPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    sequence bigint PRIMARY KEY,
    after_id bigint NOT NULL,
    last_id bigint NOT NULL,
    event_count integer NOT NULL,
    notification_ids text NOT NULL,
    events_digest text NOT NULL,
    chain_start bigint,
    previous_hash text,
    written_at timestamptz NOT NULL,
    checkpoint_hash text NOT NULL
)
"""
COLUMNS = (
    "sequence, after_id, last_id, event_count, notification_ids, events_digest, chain_start,"
    " previous_hash, written_at, checkpoint_hash"
)


@dataclass(frozen=True)
class Recorded:
    """A checkpoint as stored: its fields and the hash stored beside them."""

    checkpoint: Checkpoint
    checkpoint_hash: str

    def as_json(self) -> dict[str, object]:
        cp = self.checkpoint
        return {
            "sequence": cp.sequence,
            "afterId": cp.after_id,
            "lastId": cp.last_id,
            "eventCount": cp.event_count,
            "hash": self.checkpoint_hash,
            "writtenAt": cp.written_at.isoformat(),
        }


def recorded_of(row: dict[str, Any]) -> Recorded:
    checkpoint = Checkpoint(
        sequence=int(row["sequence"]),
        after_id=int(row["after_id"]),
        last_id=int(row["last_id"]),
        event_count=int(row["event_count"]),
        notification_ids=str(row["notification_ids"]),
        events_digest=str(row["events_digest"]),
        chain_start=None if row["chain_start"] is None else int(row["chain_start"]),
        previous_hash=row["previous_hash"],
        written_at=row["written_at"],
    )
    return Recorded(checkpoint, str(row["checkpoint_hash"]))


class CheckpointStore:
    """`audit_checkpoints` on one connection (autocommit; `append` is its own transaction)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def setup(self) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.EVENT_STORE_SCHEMA,)
            )
            self.conn.execute(CHECKPOINTS_DDL)

    def all(self) -> list[Recorded]:
        with self.conn.cursor(row_factory=dict_row) as curs:
            curs.execute(f"SELECT {COLUMNS} FROM audit_checkpoints ORDER BY sequence")  # noqa: S608 - our own columns
            return [recorded_of(row) for row in curs.fetchall()]

    def latest(self) -> Recorded | None:
        with self.conn.cursor(row_factory=dict_row) as curs:
            curs.execute(
                f"SELECT {COLUMNS} FROM audit_checkpoints ORDER BY sequence DESC LIMIT 1"  # noqa: S608
            )
            row = curs.fetchone()
        return None if row is None else recorded_of(row)

    def append(
        self, stored: StoredLog, now: Callable[[], datetime], max_events: int
    ) -> Checkpoint | None:
        """The next checkpoint over the events after the latest one (None if there are none),
        written in one transaction under the checkpoints' lock."""
        with self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.AUDIT_CHECKPOINTS,)
            )
            latest = self.latest()
            previous = None if latest is None else latest.checkpoint
            after = 0 if previous is None else previous.last_id
            records = stored.page(after, limit=max_events)
            if not records:
                return None
            examined = [stored.examine(record) for record in records]
            alarm(examined)
            leaves = [item.leaf for item in examined]
            checkpoint = next_checkpoint(
                previous, coverage_of(leaves, records[-1].notification_id), now()
            )
            self.conn.execute(
                f"INSERT INTO audit_checkpoints ({COLUMNS})"  # noqa: S608 - our own columns
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    checkpoint.sequence,
                    checkpoint.after_id,
                    checkpoint.last_id,
                    checkpoint.event_count,
                    checkpoint.notification_ids,
                    checkpoint.events_digest,
                    checkpoint.chain_start,
                    checkpoint.previous_hash,
                    checkpoint.written_at,
                    checkpoint.digest(),
                ),
            )
        return checkpoint

    def catch_up(
        self, stored: StoredLog, now: Callable[[], datetime], max_events: int
    ) -> list[Checkpoint]:
        """Checkpoints until every committed event is under one."""
        written: list[Checkpoint] = []
        while (checkpoint := self.append(stored, now, max_events)) is not None:
            written.append(checkpoint)
        return written


def alarm(examined: list[Examined]) -> None:
    """An error in the log for each order event whose stored hash is wrong: the early alarm."""
    for item in examined:
        if item.problem is not None or (item.chained and item.stored_hash != item.digest):
            log.error(
                "audit: order %s version %d (notification %d) does not match its hash;"
                " run otc audit verify",
                item.record.originator_id,
                item.record.originator_version,
                item.record.notification_id,
            )


class Checkpointer:
    """The projector's periodic checkpoints, in a thread of their own beside its runner.

    A PostgreSQL outage is ridden out: the connection is dropped and the next round connects
    again. Any other failure is logged and retried on the next round; it never stops the
    projector, whose read model does not depend on it."""

    def __init__(self, settings: Settings, stored: StoredLog, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.stored = stored
        self.now = now
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.settings.audit_checkpoint_seconds):
            self.round()
        self.close()

    def start(self, stopping: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(stopping,), name="audit-checkpoints", daemon=True
        )
        thread.start()
        return thread

    def round(self) -> list[Checkpoint]:
        try:
            store = self._store()
            written = store.catch_up(
                self.stored, self.now, self.settings.audit_checkpoint_max_events
            )
        except Exception as error:
            self.close()
            if is_outage(error):
                log.debug("audit checkpoint skipped: %s", error)
            else:
                log.exception("audit checkpoint failed")
            return []
        for checkpoint in written:
            log.info(
                "audit checkpoint %d: notifications %d-%d, %d events, hash %s",
                checkpoint.sequence,
                checkpoint.after_id + 1,
                checkpoint.last_id,
                checkpoint.event_count,
                checkpoint.digest(),
            )
        return written

    def _store(self) -> CheckpointStore:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.settings.conninfo(), autocommit=True)
            store = CheckpointStore(self._conn)
            store.setup()
            return store
        return CheckpointStore(self._conn)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
