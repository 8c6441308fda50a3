"""A treasury worker process: `python -m services.workers eur-treasury|usdc-chain`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any
from uuid import UUID

from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from domain.commands import Command
from domain.order import Order
from services.command_client import CommandClient
from services.contracts import EventEnvelope
from services.engine.app import open_orders
from services.engine.service import INFRASTRUCTURE_ERRORS
from services.logs import configure_logging
from services.resilience import Backoff, Dependency, Outages, pause_before_redelivery
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.upstreams import open_money_movers
from services.vitals import process_name, vitals_running
from services.workers.treasury import EurTreasuryWorker, TreasuryWorker, UsdcChainWorker

log = logging.getLogger("otc.workers")


async def run(settings: Settings, which: str) -> None:
    outages = Outages(process_name(settings, which), log)
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
    async with AsyncExitStack() as stack:
        orders = open_orders(settings)
        stack.callback(orders.close)
        resources = await stack.enter_async_context(PostgresResourceDirectory(settings))
        await resources.create_schema()
        client = CommandClient(settings, instance_id=which)
        await client.start(replies=False)
        stack.push_async_callback(client.stop)
        ledger, chain = await stack.enter_async_context(open_money_movers(settings))

        async def load_order(order_id: UUID) -> Order | None:
            return await asyncio.to_thread(orders.order, order_id)

        async def publish(command: Command) -> None:
            await client.publish(command)

        worker: TreasuryWorker
        if which == "eur-treasury":
            worker = EurTreasuryWorker(
                ledger=ledger, resources=resources, load_order=load_order, publish=publish
            )
            group = settings.eur_worker_group
        else:
            worker = UsdcChainWorker(
                chain=chain, resources=resources, load_order=load_order, publish=publish
            )
            group = settings.chain_worker_group

        broker = KafkaBroker(
            settings.kafka_bootstrap, client_id=f"otc-{which}", log_level=logging.DEBUG
        )

        @broker.subscriber(
            settings.events_topic,
            group_id=group,
            batch=True,
            max_records=200,
            batch_timeout_ms=20,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )
        async def on_order_events(_: list[Any], msg: KafkaMessage) -> None:
            """Commit only after every outcome of the batch is published; on a retryable failure
            the batch comes again, and what was done already is not done twice."""
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            envelopes = []
            for record in records:
                try:
                    envelopes.append(EventEnvelope.model_validate_json(record.value))
                except ValidationError:
                    log.exception(
                        "%s: skipping an event that does not parse at offset %s",
                        which,
                        record.offset,
                    )
            try:
                await worker.handle_batch(envelopes)
            except INFRASTRUCTURE_ERRORS as error:
                await pause_before_redelivery(error, outages, backoff)
                raise
            backoff.reset()
            outages.ok()

        app = FastStream(broker, logger=log)
        log.info("%s: consuming %s as group %s", which, settings.events_topic, group)
        async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
            await app.run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.workers")
    parser.add_argument("worker", choices=["eur-treasury", "usdc-chain"])
    args = parser.parse_args()
    configure_logging()
    asyncio.run(run(Settings(), args.worker))


if __name__ == "__main__":
    main()
