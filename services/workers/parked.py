"""Movements whose outcome is unknown, parked until it is learned.

A worker that cannot tell whether a movement happened (a timeout, an unreadable answer, a
conflict) parks it here, in the same process step as its event, before that event's offset is
committed: the partition moves on, and the movement is retried in the background with the same
reference (so it can never move twice) until the party says done or refused. Past a bound the
order is flagged for operators, and the retries go on.

`PostgresParkedMovements` keeps them in schema `workers`; claiming a due movement takes a lease,
so several instances of a worker share the work without doing one movement at once.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from domain.order import Leg
from services import advisory_locks
from services.pg import PooledStore

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS workers;
CREATE TABLE IF NOT EXISTS workers.parked_movements (
    worker text NOT NULL,
    order_id uuid NOT NULL,
    leg text NOT NULL,
    attempt integer NOT NULL,
    first_seen timestamptz NOT NULL,
    next_try timestamptz NOT NULL,
    tries integer NOT NULL DEFAULT 0,
    flagged boolean NOT NULL DEFAULT false,
    last_error text NOT NULL DEFAULT '',
    PRIMARY KEY (worker, order_id, leg, attempt)
);
CREATE INDEX IF NOT EXISTS parked_movements_due ON workers.parked_movements (worker, next_try);
"""

_COLUMNS = "order_id, leg, attempt, first_seen, next_try, tries, flagged, last_error"


@dataclass(frozen=True)
class Parked:
    """One movement of one order whose outcome is not known yet."""

    order_id: UUID
    leg: Leg
    attempt: int
    first_seen: datetime
    next_try: datetime
    tries: int = 0
    flagged: bool = False
    last_error: str = ""


class ParkedMovements(ABC):
    """The port: park a movement, claim the due ones, settle or reschedule them."""

    @abstractmethod
    async def park(self, worker: str, parked: Parked) -> None:
        """Keep a movement; parking one already parked changes nothing."""

    @abstractmethod
    async def claim_due(
        self, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> builtins.list[Parked]:
        """The movements due by `now`, each leased (not due again) for `lease`."""

    @abstractmethod
    async def reschedule(self, worker: str, parked: Parked) -> None:
        """Store a claimed movement's new tries, next try, flag and error."""

    @abstractmethod
    async def settle(self, worker: str, parked: Parked) -> None:
        """Forget a movement whose outcome is known (or no longer awaited)."""

    @abstractmethod
    async def list(self, worker: str | None = None) -> builtins.list[tuple[str, Parked]]:
        """Every parked movement, by worker, oldest first."""


class PostgresParkedMovements(PooledStore, ParkedMovements):
    pool_name = "parked"
    autocommit = True

    async def create_schema(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.PARKED_MOVEMENTS_SCHEMA,)
            )
            await conn.execute(_SCHEMA)

    async def park(self, worker: str, parked: Parked) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO workers.parked_movements (worker, {_COLUMNS})"  # noqa: S608 - constant text
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (worker, *_values(parked)),
            )

    async def claim_due(
        self, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> builtins.list[Parked]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE workers.parked_movements SET next_try = %s"  # noqa: S608 - constant text
                " WHERE (worker, order_id, leg, attempt) IN ("
                "  SELECT worker, order_id, leg, attempt FROM workers.parked_movements"
                "  WHERE worker = %s AND next_try <= %s ORDER BY next_try LIMIT %s"
                "  FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_COLUMNS}",
                (now + lease, worker, now, limit),
            )
            rows = await cursor.fetchall()
        return [_parked(row) for row in rows]

    async def reschedule(self, worker: str, parked: Parked) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE workers.parked_movements"
                " SET next_try = %s, tries = %s, flagged = %s, last_error = %s"
                " WHERE worker = %s AND order_id = %s AND leg = %s AND attempt = %s",
                (
                    parked.next_try,
                    parked.tries,
                    parked.flagged,
                    parked.last_error[:1000],
                    worker,
                    parked.order_id,
                    parked.leg.value,
                    parked.attempt,
                ),
            )

    async def settle(self, worker: str, parked: Parked) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM workers.parked_movements"
                " WHERE worker = %s AND order_id = %s AND leg = %s AND attempt = %s",
                (worker, parked.order_id, parked.leg.value, parked.attempt),
            )

    async def list(self, worker: str | None = None) -> builtins.list[tuple[str, Parked]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT worker, {_COLUMNS} FROM workers.parked_movements"  # noqa: S608 - constant text
                " WHERE %s::text IS NULL OR worker = %s ORDER BY first_seen",
                (worker, worker),
            )
            rows = await cursor.fetchall()
        return [(row[0], _parked(row[1:])) for row in rows]


class InMemoryParkedMovements(ParkedMovements):
    """The fake, for unit tests of the workers."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, UUID, Leg, int], Parked] = {}

    async def park(self, worker: str, parked: Parked) -> None:
        self.rows.setdefault((worker, parked.order_id, parked.leg, parked.attempt), parked)

    async def claim_due(
        self, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> builtins.list[Parked]:
        due = sorted(
            (p for (w, *_), p in self.rows.items() if w == worker and p.next_try <= now),
            key=lambda p: p.next_try,
        )[:limit]
        for parked in due:
            self.rows[worker, parked.order_id, parked.leg, parked.attempt] = replace(
                parked, next_try=now + lease
            )
        return due

    async def reschedule(self, worker: str, parked: Parked) -> None:
        key = (worker, parked.order_id, parked.leg, parked.attempt)
        if key in self.rows:
            self.rows[key] = parked

    async def settle(self, worker: str, parked: Parked) -> None:
        self.rows.pop((worker, parked.order_id, parked.leg, parked.attempt), None)

    async def list(self, worker: str | None = None) -> builtins.list[tuple[str, Parked]]:
        found = [(w, p) for (w, *_), p in self.rows.items() if worker in (None, w)]
        return sorted(found, key=lambda item: item[1].first_seen)


def _values(parked: Parked) -> tuple[object, ...]:
    return (
        parked.order_id,
        parked.leg.value,
        parked.attempt,
        parked.first_seen,
        parked.next_try,
        parked.tries,
        parked.flagged,
        parked.last_error[:1000],
    )


def _parked(row: tuple[object, ...]) -> Parked:
    order_id, leg, attempt, first_seen, next_try, tries, flagged, last_error = row
    assert isinstance(order_id, UUID)  # noqa: S101 - the table's own types
    assert isinstance(first_seen, datetime)  # noqa: S101
    assert isinstance(next_try, datetime)  # noqa: S101
    return Parked(
        order_id=order_id,
        leg=Leg(str(leg)),
        attempt=int(str(attempt)),
        first_seen=first_seen,
        next_try=next_try,
        tries=int(str(tries)),
        flagged=bool(flagged),
        last_error=str(last_error),
    )
