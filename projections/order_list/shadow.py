"""A rebuilt `order_list` beside the live one, and the swap that puts it in the live one's place.

The rebuild writes `order_list_rebuild` and its own tracking table through the same view class
the projector writes `order_list` with. The swap, in the caller's transaction, renames the live
table (and its indexes) to `order_list_previous` and the rebuilt one to `order_list`: readers and
writers that name `order_list` find the rebuilt table from the next statement on, prepared
statements included (PostgreSQL plans them again when a table they use is renamed). The live
tracking table stays where it is: the rebuilt table is swapped in at the live position.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from projections.order_list.statements import COLUMNS, INDEX_SUFFIXES
from projections.order_list.view import OrderListView

REBUILD_SUFFIX = "_rebuild"
PREVIOUS_SUFFIX = "_previous"


def shadow_of(live: OrderListView) -> OrderListView:
    """The rebuild's table beside `live` (not created: see `recreate`)."""
    return OrderListView(live.datastore, table_name=live.table_name + REBUILD_SUFFIX)


def previous_of(live: OrderListView) -> OrderListView:
    """Where the swap puts the table that was live."""
    return OrderListView(live.datastore, table_name=live.table_name + PREVIOUS_SUFFIX)


def drop(curs: Cursor[DictRow], view: OrderListView) -> None:
    """Drop a view's table and tracking table, where they exist."""
    curs.execute(view.sql("DROP TABLE IF EXISTS {table}, {tracking}"))


def recreate(view: OrderListView) -> None:
    """An empty table and tracking table for `view`, whatever was there before."""
    with view.datastore.transaction(commit=True) as curs:
        drop(curs, view)
    view.create_table()


@dataclass(frozen=True)
class Comparison:
    rows: int
    """Rows of the rebuilt table."""
    differing: tuple[UUID, ...]
    """Orders whose rows differ, or that only one of the two tables has."""

    @property
    def equal(self) -> bool:
        return not self.differing


def compare(curs: Cursor[DictRow], live: OrderListView, rebuilt: OrderListView) -> Comparison:
    """Both tables row for row, every column (the JSON ones by value)."""
    a, b = _table(live), _table(rebuilt)
    both = SQL(", ").join
    query = SQL(
        "SELECT coalesce(a.id, b.id) AS id FROM {a} AS a FULL JOIN {b} AS b ON a.id = b.id"
        " WHERE ({left}) IS DISTINCT FROM ({right}) ORDER BY 1"
    ).format(
        a=a,
        b=b,
        left=both(SQL("a.") + Identifier(c) for c in COLUMNS),
        right=both(SQL("b.") + Identifier(c) for c in COLUMNS),
    )
    differing = tuple(row["id"] for row in curs.execute(query).fetchall())
    counted = curs.execute(SQL("SELECT count(*) AS n FROM {}").format(b)).fetchone()
    return Comparison(rows=0 if counted is None else int(counted["n"]), differing=differing)


def swap(curs: Cursor[DictRow], live: OrderListView, rebuilt: OrderListView) -> None:
    """Put `rebuilt` in `live`'s place and `live`'s table aside as the previous one (replacing
    an older previous one), in the caller's transaction; `rebuilt`'s tracking table goes."""
    previous = previous_of(live)
    drop(curs, previous)
    _rename(curs, live, previous)
    _rename(curs, rebuilt, live)
    curs.execute(rebuilt.sql("DROP TABLE {tracking}"))


def _rename(curs: Cursor[DictRow], view: OrderListView, to: OrderListView) -> None:
    curs.execute(SQL("ALTER TABLE {} RENAME TO {}").format(_table(view), Identifier(to.table_name)))
    schema = Identifier(view.datastore.schema)
    for suffix in INDEX_SUFFIXES:
        curs.execute(
            SQL("ALTER INDEX IF EXISTS {}.{} RENAME TO {}").format(
                schema,
                Identifier(f"{view.table_name}_{suffix}"),
                Identifier(f"{to.table_name}_{suffix}"),
            )
        )


def _table(view: OrderListView) -> Composed:
    return Composed([Identifier(view.datastore.schema), SQL("."), Identifier(view.table_name)])
