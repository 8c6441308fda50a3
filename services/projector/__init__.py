"""The projector: the `order_list` read model, kept by `python -m services.projector` and
rebuilt beside it by `otc projections rebuild order-list` (`services.projector.rebuild`).

A projector writes the view only while it holds the writer lock, so a second one waits as a
standby; a rebuild holds a lock of its own, so that one runs at a time, and runs while a
projector serves the live table.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from projections.order_list import OrderListProjection, OrderListView
from services import advisory_locks
from services.engine.event_store import harden_recorder, orders_env, schema_lock
from services.settings import Settings


def projector_env(settings: Settings) -> dict[str, str]:
    """The environment of the `Orders` application and of the view (tables created if missing)."""
    return orders_env(settings)


def open_order_list(settings: Settings) -> OrderListView:
    """The `order_list` view on this database, as the projection runner builds it (same table,
    same tracking table); the caller closes it."""
    env = Environment(OrderListProjection.name, {**os.environ, **projector_env(settings)})
    with schema_lock(settings):
        factory = InfrastructureFactory[OrderListView].construct(env=env)
        view = factory.tracking_recorder(OrderListView)
    harden_recorder(view, settings)
    return view


def take_writer_lock(conn: psycopg.Connection[Any]) -> bool:
    """Try to take the view's writer lock on this connection (held until it closes)."""
    return _try_lock(conn, advisory_locks.ORDER_LIST_WRITER)


def take_rebuild_lock(conn: psycopg.Connection[Any]) -> bool:
    """Try to take the rebuild's lock on this connection (held until it closes)."""
    return _try_lock(conn, advisory_locks.ORDER_LIST_REBUILD)


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return row is not None and bool(row[0])
