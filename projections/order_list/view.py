"""The `order_list` read model: one row per order, for the list and detail routes.

Every write reads the rows it changes, folds them and records them with this view's tracking
position in ONE transaction, so a notification of the event store is applied exactly once: a
notification already tracked is skipped whole, and a row never goes back to an older version
(the `version` guard of the upsert). Each write transaction first takes the `WRITES_LOCK`
advisory lock shared: the rebuild takes it exclusively while it swaps a rebuilt table in, and
so pauses every writer at the start of a transaction, before it has read anything.

The same transaction announces the position on the channel `<table>_position` (for the live
view `order_list_position`, `POSITION_CHANNEL`; the position as the payload): PostgreSQL
delivers it at commit, so a listener (the gateway, for read-your-writes) hears of a position
once its rows are visible.

The public view of an order is stored as its camelCase JSON (`OrderView.public_json()`), so the
read side returns the very `OrderView` the projection built, decimals and timestamps unchanged.

A view is one table and its tracking table: `order_list` and `order_list_tracking` for the live
one; the rebuild writes another pair of the same schema beside it (`table_name=`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from domain.order import Status
from domain.views import OpsFacts, OrderView
from projections.order_list import statements
from projections.order_list.statements import INDEX_SUFFIXES

ORDER_LIST_TABLE = "order_list"
POSITION_CHANNEL = f"{ORDER_LIST_TABLE}_position"
CREATE_TABLE_ATTEMPTS = 5
WRITES_LOCK = 7_031_004
"""The advisory lock every write transaction of the view holds shared, and the rebuild's swap
exclusively (`services.advisory_locks.ORDER_LIST_WRITES`)."""


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


Fold = Callable[[Mapping[UUID, OrderListRow]], Mapping[UUID, OrderListRow]]
"""From the rows a write read (by order id; absent: no row yet), the rows it changes."""


class OrderListView(PostgresTrackingRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        table_name: str = ORDER_LIST_TABLE,
        tracking_table_name: str | None = None,
        **kwargs: Any,  # noqa: ANN401 - passed on to eventsourcing's recorder
    ) -> None:
        super().__init__(
            datastore, tracking_table_name=tracking_table_name or f"{table_name}_tracking", **kwargs
        )
        self.table_name = table_name
        self.sql_create_statements.extend(self.sql(text) for text in statements.CREATE)
        self.upsert_statement = self.sql(statements.UPSERT)
        self.copy_statement = self.sql(statements.COPY)
        self.select_by_ids_statement = self.sql(statements.SELECT_BY_IDS)
        self.select_page_statements = {
            key: self.sql(text) for key, text in statements.SELECT_PAGE.items()
        }
        self.notify_statement = SQL("SELECT pg_notify(%s, %s)")
        self.position_channel = f"{table_name}_position"

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

    def sql(self, text: str) -> Composed:
        """`text` with `{table}`, `{tracking}` and `{<index suffix>}` named for this view."""
        schema = Identifier(self.datastore.schema)
        return SQL(text).format(
            table=Composed([schema, SQL("."), Identifier(self.table_name)]),
            tracking=Composed([schema, SQL("."), Identifier(self.tracking_table_name)]),
            **{suffix: Identifier(f"{self.table_name}_{suffix}") for suffix in INDEX_SUFFIXES},
        )

    # ------------------------------------------------------------------ writes

    def apply(self, order_ids: Collection[UUID], fold: Fold, tracking: Tracking) -> bool:
        """Read these orders' rows, fold them and write what changed, recording `tracking`, in
        one transaction (see `apply_on`)."""
        with self.datastore.transaction(commit=True) as curs:
            self.take_write_lock(curs)
            return self.apply_on(curs, order_ids, fold, tracking)

    def apply_on(
        self,
        curs: Cursor[DictRow],
        order_ids: Collection[UUID],
        fold: Fold,
        tracking: Tracking,
        known: Mapping[UUID, OrderListRow] | None = None,
    ) -> bool:
        """`apply` within the caller's transaction. A position this view already tracked
        changes nothing (False): a redelivered notification is not applied twice. Rows new to
        the table are copied into it, the others upserted. `known` are rows of these orders the
        caller holds as they are in the table (the only writer, the rebuild): not read again."""
        if self.reached(curs, tracking):
            return False
        known = known or {}
        found = {**known, **self._rows_on(curs, [i for i in order_ids if i not in known])}
        changed = fold(found)
        new = [row for order_id, row in changed.items() if order_id not in found]
        if new:
            with curs.copy(self.copy_statement) as copy:
                for row in new:
                    copy.write_row(self.values(row))
        self._upsert(curs, (row for order_id, row in changed.items() if order_id in found))
        self._track(curs, tracking)
        return True

    def save(self, rows: Iterable[OrderListRow], tracking: Tracking) -> bool:
        """Upsert rows and record `tracking`, in one transaction; a tracked position changes
        nothing (False). Should another writer record the position meanwhile, the tracking
        insert fails and the whole transaction, rows included, rolls back."""
        with self.datastore.transaction(commit=True) as curs:
            self.take_write_lock(curs)
            if self.reached(curs, tracking):
                return False
            self._upsert(curs, rows)
            self._track(curs, tracking)
        return True

    def insert_tracking(self, tracking: Tracking) -> None:
        """Record a position that changes no row (an event of another aggregate); idempotent
        like `save`."""
        self.save((), tracking)

    @staticmethod
    def take_write_lock(curs: Cursor[DictRow]) -> None:
        curs.execute("SELECT pg_advisory_xact_lock_shared(%s)", (WRITES_LOCK,))

    def reached(self, curs: Cursor[DictRow], tracking: Tracking) -> bool:
        """Whether this view has applied the notification `tracking` names already."""
        position = self._max_tracking_id(tracking.application_name, curs)
        return position is not None and position >= tracking.notification_id

    def position_on(self, curs: Cursor[DictRow], application_name: str) -> int:
        """The position this view has reached, read in the caller's transaction."""
        return self._max_tracking_id(application_name, curs) or 0

    def _track(self, curs: Cursor[DictRow], tracking: Tracking) -> None:
        """Record the position and announce it (delivered at commit)."""
        self._insert_tracking(curs, tracking)
        curs.execute(self.notify_statement, (self.position_channel, str(tracking.notification_id)))

    def _upsert(self, curs: Cursor[DictRow], rows: Iterable[OrderListRow]) -> None:
        params = [self.values(row) for row in rows]
        if params:
            curs.executemany(self.upsert_statement, params)

    @staticmethod
    def values(row: OrderListRow) -> tuple[object, ...]:
        """The row's column values, in the order of `COLUMNS`."""
        view = row.view
        return (
            view.id,
            row.customer_id,
            view.side.value,
            view.status.value,
            view.created_at,
            view.updated_at,
            row.version,
            row.position,
            view.public_json_text(),
            row.ops.model_dump_json(by_alias=True),
            row.ops.needs_attention(view.status),
        )

    # ------------------------------------------------------------------ reads

    def get(self, order_id: UUID) -> OrderListRow | None:
        return self.get_many([order_id]).get(order_id)

    def get_many(self, order_ids: Collection[UUID]) -> dict[UUID, OrderListRow]:
        if not order_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._rows_on(curs, order_ids)

    def _rows_on(
        self, curs: Cursor[DictRow], order_ids: Collection[UUID]
    ) -> dict[UUID, OrderListRow]:
        if not order_ids:
            return {}
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
