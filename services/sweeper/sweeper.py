"""The expiry sweeper: quotes past their time become `expired` within a few seconds.

It keeps a small table of open quotes, built from the notification log exactly once (the rows
and its position change in one transaction), and every second sends `ExpireQuote` for the ones
past due. The command is idempotent and refused harmlessly if the order moved on meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
from eventsourcing.persistence import Notification

from domain.commands import ActorRef, ExpireQuote
from domain.order import Order
from services.commanding import new_command
from services.engine.event_store import Orders
from services.tailing import POSITIONS_DDL, NotificationTail, create_tables

log = logging.getLogger(__name__)

SWEEPER_NAME = "expiry-sweeper"
SWEEPER_ACTOR = ActorRef.system(SWEEPER_NAME)
RESEND_AFTER = timedelta(seconds=5)
SWEEP_LIMIT = 500

OPEN_QUOTES_DDL = """
CREATE TABLE IF NOT EXISTS open_quotes (
    order_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS open_quotes_expires_at ON open_quotes (expires_at);
"""


def expire_command(
    order_id: UUID, customer_id: UUID, expires_at: datetime, now: datetime
) -> ExpireQuote:
    """Deterministic per quote and expiry, so a resent ExpireQuote is a redelivery."""
    return new_command(
        ExpireQuote,
        command_id=uuid5(NAMESPACE_URL, f"urn:otc:expire:{order_id}:{expires_at.isoformat()}"),
        order_id=order_id,
        customer_id=customer_id,
        actor=SWEEPER_ACTOR,
        issued_at=now,
    )


class OpenQuotes:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def setup(self) -> None:
        await create_tables(self.conn, POSITIONS_DDL, OPEN_QUOTES_DDL)

    async def position(self) -> int | None:
        cursor = await self.conn.execute(
            "SELECT position FROM tail_positions WHERE name = %s", (SWEEPER_NAME,)
        )
        row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def apply(self, events: Sequence[Order.Event], position: int) -> None:
        """The open quotes these events open or close, and the new position, in one transaction."""
        async with self.conn.transaction():
            for event in events:
                if isinstance(event, Order.Quoted | Order.Requoted):
                    await self.conn.execute(
                        "INSERT INTO open_quotes (order_id, customer_id, expires_at)"
                        " VALUES (%s, %s, %s) ON CONFLICT (order_id)"
                        " DO UPDATE SET expires_at = excluded.expires_at, sent_at = NULL",
                        (event.originator_id, event.customer_id, event.expires_at),
                    )
                else:
                    await self.conn.execute(
                        "DELETE FROM open_quotes WHERE order_id = %s", (event.originator_id,)
                    )
            await self.conn.execute(
                "INSERT INTO tail_positions (name, position) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()",
                (SWEEPER_NAME, position),
            )

    async def due(self, now: datetime) -> list[tuple[UUID, UUID, datetime]]:
        cursor = await self.conn.execute(
            "SELECT order_id, customer_id, expires_at FROM open_quotes"
            " WHERE expires_at <= %s AND (sent_at IS NULL OR sent_at <= %s)"
            " ORDER BY expires_at LIMIT %s",
            (now, now - RESEND_AFTER, SWEEP_LIMIT),
        )
        return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

    async def mark_sent(self, order_ids: Sequence[UUID], now: datetime) -> None:
        await self.conn.execute(
            "UPDATE open_quotes SET sent_at = %s WHERE order_id = ANY(%s)", (now, list(order_ids))
        )


async def follow_log(orders: Orders, quotes: OpenQuotes, stop: asyncio.Event) -> None:
    async with NotificationTail(orders.recorder, await quotes.position()) as tail:
        while not stop.is_set():
            batch: list[Notification] = await tail.next_batch()
            if batch:
                events = [orders.mapper.to_domain_event(n) for n in batch]
                await quotes.apply([e for e in events if isinstance(e, Order.Event)], batch[-1].id)


async def sweep_forever(
    quotes: OpenQuotes,
    publish: Callable[[ExpireQuote], Awaitable[None]],
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    interval: float = 1.0,
) -> None:
    while not stop.is_set():
        now = clock()
        due = await quotes.due(now)
        if due:
            await asyncio.gather(*(publish(expire_command(o, c, at, now)) for o, c, at in due))
            await quotes.mark_sent([order_id for order_id, _, _ in due], now)
            log.info("sweeper: sent ExpireQuote for %d quotes", len(due))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
