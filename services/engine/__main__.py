"""The engine process: `python -m services.engine`. Its composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy

from domain.money import Currency
from domain.order import ApprovalControls, SizeLimits
from services import kafka
from services.engine.event_store import open_orders
from services.engine.handlers import Policy
from services.engine.processor import CommandProcessor
from services.engine.service import INFRASTRUCTURE_ERRORS, EngineService
from services.logs import configure_logging
from services.producers import RenewingProducer
from services.resilience import Backoff, Dependency, Outages, pause_before_redelivery
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.upstreams import open_upstreams
from services.vitals import process_name, vitals_running

log = logging.getLogger("otc.engine")


async def without_reply_to(
    msg: object, original: Callable[[object], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """Our `reply_to` header names a client instance, not a topic. FastStream would publish the
    handler's return value there on its own request/reply path: blank it, we reply ourselves."""
    message = await original(msg)
    message.reply_to = ""
    return message


def policy_of(settings: Settings) -> Policy:
    return Policy(
        quote_ttl=timedelta(seconds=settings.quote_ttl_seconds),
        limits=SizeLimits(
            minimum={
                Currency.EUR: settings.min_eur_amount,
                Currency.USDC: settings.min_usdc_amount,
            },
            maximum={
                Currency.EUR: settings.max_eur_amount,
                Currency.USDC: settings.max_usdc_amount,
            },
        ),
        approval=ApprovalControls(
            collar_bps=settings.approval_collar_bps,
            dual_control_eur=settings.dual_control_eur,
        ),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run(settings: Settings) -> None:
    outages = Outages(process_name(settings, "engine"), log)
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
    async with AsyncExitStack() as stack:
        orders = open_orders(settings)
        stack.callback(orders.close)
        resources = PostgresResourceDirectory(settings)
        await resources.open()
        stack.push_async_callback(resources.close)
        await resources.create_schema()
        pricing, balances = await stack.enter_async_context(open_upstreams(settings))
        processor = CommandProcessor(
            orders,
            pricing=pricing,
            balances=balances,
            resources=resources,
            policy=policy_of(settings),
            clock=utc_now,
        )
        broker = kafka.broker(settings, client_id="otc-engine", log_level=logging.DEBUG)
        producer = RenewingProducer(
            lambda: kafka.producer(settings, client_id="otc-engine-replies", linger_ms=2),
            name="engine replies",
        )
        await producer.start()
        stack.push_async_callback(producer.stop)

        async def send(
            topic: str, value: bytes, key: bytes | None, headers: dict[str, str]
        ) -> Awaitable[Any]:
            encoded = [(name, text.encode()) for name, text in headers.items()]
            return await producer.send(topic, value, key=key, headers=encoded)

        service = EngineService(
            processor,
            send,
            replies_topic=settings.replies_topic,
            dlq_topic=settings.dlq_topic,
        )

        @broker.subscriber(
            settings.commands_topic,
            group_id=settings.engine_group,
            batch=True,
            max_records=settings.engine_batch_size,
            batch_timeout_ms=20,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=without_reply_to,
        )
        async def on_commands(_: list[Any], msg: KafkaMessage) -> None:
            """Commit only after the batch's events are saved and its replies delivered. While
            PostgreSQL or Kafka is away the batch fails and comes again, after a backoff delay."""
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            try:
                await service.handle(records)
            except INFRASTRUCTURE_ERRORS as error:
                await pause_before_redelivery(error, outages, backoff)
                raise
            backoff.reset()
            outages.ok()

        app = FastStream(broker, logger=log)
        log.info("engine: consuming %s as group %s", settings.commands_topic, settings.engine_group)
        async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
            await app.run()


def main() -> None:
    configure_logging()
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
