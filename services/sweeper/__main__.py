"""The expiry sweeper process: `python -m services.sweeper`. Its composition root."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

import psycopg

from domain.commands import ExpireQuote
from services.command_client import CommandClient
from services.engine.app import open_orders
from services.logs import configure_logging
from services.relay.relay import hold_leadership
from services.settings import Settings
from services.sweeper.sweeper import SWEEPER_LOCK_KEY, OpenQuotes, follow_log, sweep_forever

log = logging.getLogger("otc.sweeper")


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conninfo = settings.conninfo()
    async with (
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as lock_conn,
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as log_conn,
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as sweep_conn,
    ):
        await hold_leadership(lock_conn, SWEEPER_LOCK_KEY)
        await OpenQuotes(log_conn).setup()
        orders = open_orders(settings)
        client = CommandClient(settings, instance_id="expiry-sweeper")
        await client.start(replies=False)
        try:

            async def publish(command: ExpireQuote) -> None:
                await client.publish(command)

            log.info("sweeper: expiring quotes through %s", settings.commands_topic)
            await asyncio.gather(
                follow_log(orders, OpenQuotes(log_conn), stop),
                sweep_forever(OpenQuotes(sweep_conn), publish, lambda: datetime.now(UTC), stop),
            )
        finally:
            await client.stop()
            orders.close()


def main() -> None:
    configure_logging()
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
