"""The projector: the `order_list` read model, kept by `python -m services.projector` and
rebuilt by `otc projections rebuild order-list`.

Both write the view only while they hold one PostgreSQL advisory lock, so a rebuild never
interleaves with a running projector, and a second projector waits as a standby.
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
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s)", (advisory_locks.ORDER_LIST_WRITER,)
    ).fetchone()
    return row is not None and bool(row[0])
