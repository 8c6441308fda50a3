"""The relay process: `python -m services.relay`. Its composition root."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer

from services.engine.app import open_orders
from services.logs import configure_logging
from services.relay.relay import (
    RELAY_LOCK_KEY,
    RELAY_NAME,
    PositionStore,
    hold_leadership,
    relay_forever,
)
from services.settings import Settings

log = logging.getLogger("otc.relay")


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with await psycopg.AsyncConnection.connect(settings.conninfo(), autocommit=True) as conn:
        await hold_leadership(conn, RELAY_LOCK_KEY)
        positions = PositionStore(conn, RELAY_NAME)
        await positions.setup()
        orders = open_orders(settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            client_id="otc-relay",
        )
        await producer.start()
        try:

            async def send(key: bytes, value: bytes) -> Awaitable[Any]:
                future: Awaitable[Any] = await producer.send(settings.events_topic, value, key=key)
                return future

            log.info("relay: publishing to %s", settings.events_topic)
            await relay_forever(orders, positions, send, stop)
        finally:
            await producer.stop()
            orders.close()


def main() -> None:
    configure_logging()
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
