"""The `order_list` read model: one row per order, for the list and detail routes.

Every write records its row changes and this view's tracking position in ONE transaction, so a
notification of the event store is applied exactly once: a notification already tracked is
skipped whole, and a row never goes back to an older version (the `version` guard of the upsert).
The same transaction announces the position on the channel `order_list_position`
(`POSITION_CHANNEL`, the position as the payload): PostgreSQL delivers it at commit, so a
listener (the gateway, for read-your-writes) hears of a position once its rows are visible.
The public view of an order is stored as its camelCase JSON (`OrderView.public_json()`), so the
read side returns the very `OrderView` the projection built, decimals and timestamps unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from domain.order import Status
from domain.views import OpsFacts, OrderView

ORDER_LIST_TABLE = "order_list"
POSITION_CHANNEL = f"{ORDER_LIST_TABLE}_position"
CREATE_TABLE_ATTEMPTS = 5


@dataclass(frozen=True)
class OrderListRow:
    """One order as the read model holds it: its public view, owner and position in the log."""

    customer_id: UUID
    view: OrderView
    version: int
    position: int
    """Notification id of the last event applied to this row."""
    ops: OpsFacts = field(default_factory=OpsFacts)
    """What operators see besides the public view (approvals, a flagged movement)."""

    @property
    def order_id(self) -> UUID:
        return self.view.id


class OrderListView(PostgresTrackingRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        tracking_table_name: str = f"{ORDER_LIST_TABLE}_tracking",
        **kwargs: Any,  # noqa: ANN401 - passed on to eventsourcing's recorder
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name, **kwargs)
        self.table_name = ORDER_LIST_TABLE
        self.sql_create_statements.extend(
            self._sql(statement)
            for statement in (
                (
                    "CREATE TABLE IF NOT EXISTS {table} ("
                    " id uuid PRIMARY KEY,"
                    " customer_id uuid NOT NULL,"
                    " side text NOT NULL,"
                    " status text NOT NULL,"
                    " created_at timestamptz NOT NULL,"
                    " updated_at timestamptz NOT NULL,"
                    " version bigint NOT NULL,"
                    " position bigint NOT NULL,"
                    " view jsonb NOT NULL)"
                ),
                (
                    "CREATE INDEX IF NOT EXISTS {customer_index}"
                    " ON {table} (customer_id, created_at DESC, id DESC)"
                ),
                "CREATE INDEX IF NOT EXISTS {status_index} ON {table} (status, created_at)",
                # Added with operator facts: rows written before have none until a rebuild.
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS ops jsonb NOT NULL DEFAULT '{{}}'",
                (
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS"
                    " needs_attention boolean NOT NULL DEFAULT false"
                ),
                (
                    "CREATE INDEX IF NOT EXISTS {attention_index} ON {table} (created_at)"
                    " WHERE needs_attention"
                ),
            )
        )
        self.upsert_statement = self._sql(
            "INSERT INTO {table} AS existing"
            " (id, customer_id, side, status, created_at, updated_at, version, position, view,"
            " ops, needs_attention)"
            " VALUES (%(id)s, %(customer_id)s, %(side)s, %(status)s, %(created_at)s,"
            " %(updated_at)s, %(version)s, %(position)s, %(view)s, %(ops)s, %(needs_attention)s)"
            " ON CONFLICT (id) DO UPDATE SET"
            " customer_id = EXCLUDED.customer_id, side = EXCLUDED.side,"
            " status = EXCLUDED.status, created_at = EXCLUDED.created_at,"
            " updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,"
            " position = EXCLUDED.position, view = EXCLUDED.view, ops = EXCLUDED.ops,"
            " needs_attention = EXCLUDED.needs_attention"
            " WHERE existing.version < EXCLUDED.version"
        )
        columns = "customer_id, version, position, view, ops"
        self.select_by_ids_statement = self._sql(
            f"SELECT {columns} FROM {{table}} WHERE id = ANY(%s)"  # noqa: S608 - constant text
        )
        # One statement, one snapshot: the total and the page agree, even on an empty page.
        self.select_page_statements = {
            key: self._sql(
                "SELECT matching.total, page.* FROM"  # noqa: S608 - constant text
                f" (SELECT count(*) AS total FROM {{table}} WHERE {where}) AS matching"
                f" LEFT JOIN LATERAL (SELECT {columns} FROM {{table}} WHERE {where}"
                f" ORDER BY {order} LIMIT %s OFFSET %s) AS page ON true"
            )
            for key, where, order in (
                ("customer", "customer_id = %s", "created_at DESC, id DESC"),
                ("status", "status = ANY(%s)", "created_at, id"),
                ("attention", "needs_attention AND %s", "created_at, id"),
            )
        }
        self.notify_statement = SQL("SELECT pg_notify(%s, %s)")
        self.delete_rows_statement = self._sql("TRUNCATE {table}")
        self.delete_tracking_statement = SQL(
            "DELETE FROM {0}.{1} WHERE application_name <> %s"
        ).format(Identifier(self.datastore.schema), Identifier(self.tracking_table_name))

    def create_table(self) -> None:
        """Create the tables if missing. Processes that start together on a fresh database (the
        projector and the gateway) race to create them; the loser's transaction fails whole, and
        its next try finds the winner's tables."""
        for attempt in range(1, CREATE_TABLE_ATTEMPTS + 1):
            try:
                super().create_table()
            except IntegrityError:
                if attempt == CREATE_TABLE_ATTEMPTS:
                    raise
                time.sleep(0.1 * attempt)
            else:
                return

    def _sql(self, text: str) -> Composed:
        schema = Identifier(self.datastore.schema)
        return SQL(text).format(
            table=Composed([schema, SQL("."), Identifier(self.table_name)]),
            customer_index=Identifier(f"{self.table_name}_customer_created_idx"),
            status_index=Identifier(f"{self.table_name}_status_created_idx"),
            attention_index=Identifier(f"{self.table_name}_attention_idx"),
        )

    # ------------------------------------------------------------------ writes

    def save(self, rows: Iterable[OrderListRow], tracking: Tracking) -> bool:
        """Upsert rows, record `tracking` and announce it, in one transaction. A position this
        view already tracked changes nothing (False): a redelivered notification is not applied
        twice. Should another writer record the position meanwhile, the tracking insert fails
        and the whole transaction, rows included, rolls back (and nothing is announced)."""
        with self.datastore.transaction(commit=True) as curs:
            reached = self._max_tracking_id(tracking.application_name, curs)
            if reached is not None and reached >= tracking.notification_id:
                return False
            params = [self._params(row) for row in rows]
            if params:
                curs.executemany(self.upsert_statement, params)
            self._insert_tracking(curs, tracking)
            curs.execute(self.notify_statement, (POSITION_CHANNEL, str(tracking.notification_id)))
        return True

    def insert_tracking(self, tracking: Tracking) -> None:
        """Record a position that changes no row (an event of another aggregate); idempotent
        like `save`."""
        self.save((), tracking)

    def reset(self) -> None:
        """Empty the view: every row and every tracking position, in one transaction (the
        tracking table's own migration marker stays)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.delete_rows_statement)
            curs.execute(self.delete_tracking_statement, (self.table_migration_identifier,))

    @staticmethod
    def _params(row: OrderListRow) -> dict[str, object]:
        view = row.view
        return {
            "id": view.id,
            "customer_id": row.customer_id,
            "side": view.side.value,
            "status": view.status.value,
            "created_at": view.created_at,
            "updated_at": view.updated_at,
            "version": row.version,
            "position": row.position,
            "view": Jsonb(view.public_json()),
            "ops": Jsonb(row.ops.model_dump(mode="json", by_alias=True)),
            "needs_attention": row.ops.needs_attention(view.status),
        }

    # ------------------------------------------------------------------ reads

    def get(self, order_id: UUID) -> OrderListRow | None:
        return self.get_many([order_id]).get(order_id)

    def get_many(self, order_ids: Collection[UUID]) -> dict[UUID, OrderListRow]:
        if not order_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_by_ids_statement, (list(order_ids),))
            rows = [self._row(found) for found in curs.fetchall()]
        return {row.order_id: row for row in rows}

    def list_for_customer(
        self, customer_id: UUID, *, page: int, limit: int
    ) -> tuple[list[OrderListRow], int]:
        """One customer's orders, newest first (created_at, then id, descending), and how many
        the customer has in all."""
        return self._page("customer", customer_id, page=page, limit=limit)

    def list_by_status(
        self, statuses: Collection[Status], *, page: int, limit: int
    ) -> tuple[list[OrderListRow], int]:
        """Orders in any of these statuses, oldest first (a queue), and how many in all."""
        return self._page("status", [Status(s).value for s in statuses], page=page, limit=limit)

    def list_needing_attention(self, *, page: int, limit: int) -> tuple[list[OrderListRow], int]:
        """Orders operators must act on (a refused payout or refund, a flagged movement),
        oldest first."""
        return self._page("attention", True, page=page, limit=limit)  # noqa: FBT003 - a bound parameter

    def _page(
        self, key: str, match: object, *, page: int, limit: int
    ) -> tuple[list[OrderListRow], int]:
        if page < 1 or limit < 1:
            raise ValueError(f"page and limit start at 1 (page={page}, limit={limit})")
        params = (match, match, limit, (page - 1) * limit)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_page_statements[key], params)
            found = curs.fetchall()
        total = int(found[0]["total"]) if found else 0
        return [self._row(row) for row in found if row["view"] is not None], total

    @staticmethod
    def _row(found: DictRow) -> OrderListRow:
        return OrderListRow(
            customer_id=found["customer_id"],
            view=OrderView.model_validate(found["view"]),
            version=int(found["version"]),
            position=int(found["position"]),
            ops=OpsFacts.model_validate(found["ops"] or {}),
        )

    def close(self) -> None:
        """Close this view's connection pool (for a reader that opened the view itself)."""
        self.datastore.close()
