"""The relay process: `python -m services.relay`. Its composition root.

Each session connects, takes the relay's leadership lock, starts a producer and tails the log
from the recorded position. When PostgreSQL or Kafka goes away the session ends, and a new one
starts after a backoff delay (capped, with jitter); the process itself does not exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import psycopg

from services import advisory_locks, kafka
from services.engine.event_store import Orders, open_orders
from services.logs import configure_logging
from services.metrics import RELAY, serve_metrics
from services.producers import started, stop_quietly
from services.relay.relay import (
    RELAY_NAME,
    PositionStore,
    hold_leadership,
    relay_forever,
)
from services.settings import Settings
from services.vitals import run_sessions

log = logging.getLogger("otc.relay")


async def session(settings: Settings, stop: asyncio.Event, working: Callable[[], None]) -> None:
    async with AsyncExitStack() as stack:
        conn = await psycopg.AsyncConnection.connect(settings.conninfo(), autocommit=True)
        stack.push_async_callback(conn.close)
        if not await hold_leadership(conn, advisory_locks.RELAY, stop):
            return
        positions = PositionStore(conn, RELAY_NAME)
        await positions.setup()
        orders: Orders = await asyncio.to_thread(open_orders, settings)
        stack.callback(orders.close)
        producer = await started(kafka.producer(settings, client_id="otc-relay"))
        stack.push_async_callback(stop_quietly, producer, 10.0)

        async def send(
            key: bytes, value: bytes, headers: list[tuple[str, bytes]]
        ) -> Awaitable[Any]:
            future: Awaitable[Any] = await producer.send(
                settings.events_topic, value, key=key, headers=headers
            )
            return future

        log.info("relay: publishing to %s", settings.events_topic)
        await relay_forever(orders, positions, send, stop, working)


async def run(settings: Settings) -> None:
    serve_metrics(settings, RELAY)
    await run_sessions(
        settings, "relay", log, lambda stop, working: session(settings, stop, working)
    )


def main() -> None:
    configure_logging("relay")
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
