"""The engine process: `python -m services.engine`. Its composition root.

`build` subscribes an engine to the commands on a broker; `run` passes the real ports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker

from domain.money import Currency
from domain.order import ApprovalControls, SizeLimits
from services import kafka
from services.contracts import DeadLetterBody, ReplyEnvelope
from services.engine.event_store import open_orders
from services.engine.handlers import Policy
from services.engine.processor import CommandProcessor
from services.engine.service import EngineService, Send
from services.logs import configure_logging
from services.metrics import ENGINE, serve_metrics, stage_took
from services.producers import RenewingProducer
from services.resilience import Backoff, Dependency, Outages
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.upstreams import open_upstreams
from services.vitals import process_name, vitals_running

log = logging.getLogger("otc.engine")


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


def build(
    settings: Settings,
    broker: KafkaBroker,
    processor: CommandProcessor,
    send: Send,
    outages: Outages,
) -> EngineService:
    """Subscribe an engine to `otc.commands`; its replies and dead letters go through `send`."""
    service = EngineService(
        processor, send, replies_topic=settings.replies_topic, dlq_topic=settings.dlq_topic
    )
    # Declared for the AsyncAPI document only: the engine sends through `send`, a producer that
    # renews itself when the broker refuses it for good (services/producers.py), which the
    # broker's own producer cannot, and that leaves a batch's replies in flight together.
    broker.publisher(
        settings.replies_topic,
        title="to_replies",
        schema=ReplyEnvelope,
        description="One reply per command that names a `reply_to`, keyed by order id.",
    )
    broker.publisher(
        settings.dlq_topic,
        title="to_commands_dlq",
        schema=DeadLetterBody,
        description="Commands that do not parse, or fail for a reason of their own after "
        "bounded retries; their senders get an error reply.",
    )

    service.subscribe(
        broker,
        settings.commands_topic,
        group_id=settings.engine_group,
        max_records=settings.engine_batch_size,
        outages=outages,
        backoff=Backoff(settings.retry_initial_seconds, settings.retry_max_seconds),
    )
    return service


async def run(settings: Settings) -> None:
    outages = Outages(process_name(settings, "engine"), log)
    serve_metrics(settings, ENGINE)
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
            lookup_deadline_seconds=settings.lookup_deadline_seconds,
        )
        broker = kafka.broker(settings, client_id="otc-engine", log_level=logging.DEBUG)
        producer = RenewingProducer(
            lambda: kafka.producer(settings, client_id="otc-engine-replies"),
            name="engine replies",
        )
        await producer.start()
        stack.push_async_callback(producer.stop)

        async def send(
            topic: str, value: bytes, key: bytes | None, headers: dict[str, str]
        ) -> Awaitable[Any]:
            encoded = [(name, text.encode()) for name, text in headers.items()]
            sent = time.perf_counter()
            delivery = await producer.send(topic, value, key=key, headers=encoded)
            if topic == settings.replies_topic and isinstance(delivery, asyncio.Future):
                delivery.add_done_callback(
                    lambda _: stage_took("reply", time.perf_counter() - sent)
                )
            return delivery

        service = build(settings, broker, processor, send, outages)
        app = FastStream(broker, logger=log)
        # On a stop, the batches whose replies are in flight finish: replies out, offsets in.
        app.on_shutdown(service.commits.drain)
        log.info("engine: consuming %s as group %s", settings.commands_topic, settings.engine_group)
        async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
            await app.run()


def main() -> None:
    configure_logging("engine")
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
