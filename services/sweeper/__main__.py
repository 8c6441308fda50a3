"""The expiry sweeper process: `python -m services.sweeper`. Its composition root.

Like the relay, it works in sessions: connect, take the sweeper's lock, follow the log from the
recorded position and sweep. When PostgreSQL or Kafka goes away the session ends, and a new one
starts after a backoff delay; the process itself does not exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import psycopg

from domain.commands import ExpireQuote
from services import advisory_locks, metrics
from services.command_client import CommandClient
from services.engine.event_store import Orders, open_orders
from services.logs import configure_logging
from services.relay.relay import hold_leadership
from services.settings import Settings
from services.sweeper.sweeper import OpenQuotes, follow_log, sweep_forever
from services.vitals import run_sessions

log = logging.getLogger("otc.sweeper")


async def session(settings: Settings, stop: asyncio.Event, working: Callable[[], None]) -> None:
    conninfo = settings.conninfo()
    async with AsyncExitStack() as stack:
        lock_conn, log_conn, sweep_conn = [
            await stack.enter_async_context(
                await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            )
            for _ in range(3)
        ]
        if not await hold_leadership(lock_conn, advisory_locks.SWEEPER, stop):
            return
        await OpenQuotes(log_conn).setup()
        orders: Orders = await asyncio.to_thread(open_orders, settings)
        stack.callback(orders.close)
        client = CommandClient(settings, instance_id="expiry-sweeper")
        stack.push_async_callback(client.stop_quietly)
        await client.start(replies=False)

        async def publish(command: ExpireQuote) -> None:
            await client.publish(command)
            metrics.EXPIRIES_SENT.inc()

        log.info("sweeper: expiring quotes through %s", settings.commands_topic)
        working()
        async with asyncio.TaskGroup() as group:
            group.create_task(follow_log(orders, OpenQuotes(log_conn), stop))
            group.create_task(
                sweep_forever(OpenQuotes(sweep_conn), publish, lambda: datetime.now(UTC), stop)
            )


async def run(settings: Settings) -> None:
    metrics.serve_metrics(settings, metrics.SWEEPER)
    await run_sessions(
        settings, "sweeper", log, lambda stop, working: session(settings, stop, working)
    )


def main() -> None:
    configure_logging("sweeper")
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
