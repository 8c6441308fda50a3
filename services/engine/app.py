"""`Orders`: the eventsourcing application holding every order and idempotency key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.idempotency import IdempotencyKey
from domain.order import Order
from services.settings import Settings


class Orders(Application[UUID]):
    """Synchronous, like eventsourcing itself: call it through `asyncio.to_thread`."""

    name = "Orders"

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

    def orders(self, order_ids: Iterable[UUID]) -> dict[UUID, Order]:
        found = ((order_id, self.order(order_id)) for order_id in set(order_ids))
        return {order_id: order for order_id, order in found if order is not None}

    def keys(self, key_ids: Iterable[UUID]) -> dict[UUID, IdempotencyKey]:
        found = ((key_id, self.key(key_id)) for key_id in set(key_ids))
        return {key_id: key for key_id, key in found if key is not None}

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
