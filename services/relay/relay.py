"""The relay: every stored order event, in order, onto `otc.order-events`.

It publishes a batch with an idempotent producer, waits for the broker's acknowledgement of all
of it, and only then records its position in PostgreSQL. After a crash, or when PostgreSQL
or Kafka goes away, it resumes from that position, so an event may be published twice (consumers
dedupe by `eventId`) but never skipped.
One relay is active at a time: it holds a PostgreSQL advisory lock while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from eventsourcing.persistence import Notification

from domain.order import Order
from services import metrics
from services.contracts import CAUSED_BY, EventEnvelope, event_data, event_id, event_type
from services.engine.event_store import Orders
from services.logs import bound
from services.resilience import sleep_unless
from services.tailing import POSITIONS_DDL, NotificationTail, create_tables

log = logging.getLogger(__name__)

RELAY_NAME = "relay"

Send = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[Awaitable[Any]]]
"""`send(key, value, headers)` enqueues an event and returns its delivery."""


def envelope_of(orders: Orders, notification: Notification) -> EventEnvelope | None:
    """The published form of an order event; None for anything that is not an order event."""
    event = orders.mapper.to_domain_event(notification)
    if not isinstance(event, Order.Event):
        return None
    return EventEnvelope(
        event_id=event_id(event.originator_id, event.originator_version),
        type=event_type(type(event).__name__),
        order_id=event.originator_id,
        customer_id=event.customer_id,
        side=event.side,
        version=event.originator_version,
        position=notification.id,
        occurred_at=event.timestamp,
        data=event_data(event),
    )


class PositionStore:
    def __init__(self, conn: psycopg.AsyncConnection[Any], name: str) -> None:
        self.conn = conn
        self.name = name

    async def setup(self) -> None:
        await create_tables(self.conn, POSITIONS_DDL)

    async def get(self) -> int | None:
        cursor = await self.conn.execute(
            "SELECT position FROM tail_positions WHERE name = %s", (self.name,)
        )
        row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def put(self, position: int) -> None:
        await self.conn.execute(
            "INSERT INTO tail_positions (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()",
            (self.name, position),
        )


async def hold_leadership(
    conn: psycopg.AsyncConnection[Any], key: int, stop: asyncio.Event | None = None
) -> bool:
    """Wait until this process holds the advisory lock `key` (held until `conn` closes); False
    if `stop` was set first."""
    told = False
    while True:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return True
        if not told:
            log.info("another instance holds lock %d; waiting as a standby", key)
            told = True
        if stop is None:
            await asyncio.sleep(2.0)
        elif await sleep_unless(stop, 2.0):
            return False


async def relay_forever(
    orders: Orders,
    positions: PositionStore,
    send: Send,
    stop: asyncio.Event,
    working: Callable[[], None] = lambda: None,
) -> None:
    """Publish from the recorded position on until `stop`. Raises when PostgreSQL or Kafka
    fails; the caller then starts again, from the position recorded last."""
    after = await positions.get()
    log.info("relay: resuming after position %s", after)
    async with NotificationTail(orders.recorder, after) as tail:
        working()
        while not stop.is_set():
            batch = await tail.next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            envelopes = [envelope_of(orders, notification) for notification in batch]
            published = [envelope for envelope in envelopes if envelope is not None]
            deliveries = [await send(*message_of(envelope)) for envelope in published]
            await asyncio.gather(*deliveries)
            await positions.put(batch[-1].id)
            metrics.RELAY_PUBLISH.observe(time.perf_counter() - started)
            for envelope in published:
                published_one(envelope)


def message_of(envelope: EventEnvelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """An event's key, value and headers: `command_id`, the command that caused it."""
    caused_by = envelope.data.get("commandId")
    headers = [] if caused_by is None else [(CAUSED_BY, str(caused_by).encode())]
    return str(envelope.order_id).encode(), envelope.to_bytes(), headers


def published_one(envelope: EventEnvelope) -> None:
    metrics.event_relayed(envelope.type)
    with bound(
        order_id=envelope.order_id,
        event_id=envelope.event_id,
        command_id=envelope.data.get("commandId"),
    ):
        log.info("relay: published %s v%d", envelope.type, envelope.version)
