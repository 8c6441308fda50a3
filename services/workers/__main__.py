"""A treasury worker process: `python -m services.workers eur-treasury|usdc-chain`.

`build` wires a worker to its ports and returns the FastStream app; `main` passes the real ones.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from uuid import UUID

from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from domain.commands import Command
from domain.movements import Party
from domain.order import Order
from services import kafka, metrics
from services.batches import record_values, records_of
from services.contracts import TRACE_ID, CommandEnvelope, DeadLetterBody, ReceivedEvent
from services.dead_letters import DeadLetter, KafkaRecord, dead_letter_headers
from services.engine.event_store import open_orders
from services.logs import configure_logging, current
from services.resilience import Backoff, Dependency, Outages, consume_batch
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.upstreams import open_money_movers
from services.vitals import process_name, vitals_running
from services.workers.movers import EurTreasury, Mover, UsdcChain
from services.workers.parked import PostgresParkedMovements
from services.workers.treasury import Publish, TreasuryWorker, WorkerPolicy

log = logging.getLogger("otc.workers")


def worker_policy(settings: Settings) -> WorkerPolicy:
    return WorkerPolicy(
        event_attempts=settings.worker_event_attempts,
        movement_base_seconds=settings.movement_retry_base_seconds,
        movement_max_seconds=settings.movement_retry_max_seconds,
        flag_after=timedelta(seconds=settings.movement_flag_after_seconds),
    )


def group_of(settings: Settings, party: Party) -> str:
    return settings.eur_worker_group if party is Party.EUR_TREASURY else settings.chain_worker_group


def build(
    settings: Settings,
    broker: KafkaBroker,
    worker_of: Callable[[Publish, DeadLetter], TreasuryWorker],
    outages: Outages,
) -> TreasuryWorker:
    """Subscribe a worker to the order events and give it the broker's publishers: outcome
    commands to `otc.commands`, dead letters to `otc.order-events.dlq`."""
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
    to_commands = broker.publisher(
        settings.commands_topic,
        title="to_commands",
        schema=CommandEnvelope,
        description="The outcome of each movement: RecordSourceDebit, RecordPayout, "
        "RecordRefund, their failures, RecordMovementUnresolved.",
    )
    to_dead_letters = broker.publisher(
        settings.events_dlq_topic,
        title="to_order_events_dlq",
        schema=DeadLetterBody,
        description="Order events a worker cannot handle after bounded retries.",
    )

    async def publish(command: Command) -> None:
        trace = current("trace_id")  # the command behind the event (services/contracts.py)
        await to_commands.publish(
            CommandEnvelope.of(command).to_bytes(),
            key=str(command.order_id).encode(),
            correlation_id=str(command.command_id),
            headers={} if trace is None else {TRACE_ID: trace},
        )

    async def dead_letter(record: KafkaRecord, error: str) -> None:
        headers = dead_letter_headers(record, error, consumer=worker.name)
        await to_dead_letters.publish(record.value, key=record.key, headers=headers)

    worker: TreasuryWorker = worker_of(publish, dead_letter)
    group = group_of(settings, worker.mover.party)

    @broker.subscriber(
        settings.events_topic,
        group_id=group,
        batch=True,
        max_records=200,
        batch_timeout_ms=kafka.BATCH_WAIT_MS,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=record_values,
        title=f"on_order_events ({worker.name})",
        description=f"The {worker.name} worker: moves the legs of money its party moves.",
    )
    async def on_order_events(events: list[ReceivedEvent], msg: KafkaMessage) -> None:
        """Commit only after every event of the batch is reported, parked or dead-lettered;
        an infrastructure failure redelivers the batch, and what was done is not done twice."""
        # The raw records too: an event that does not parse is dead-lettered as its own bytes
        # with its topic, partition and offset.
        raw = records_of(msg)
        records = [KafkaRecord.of(record) for record in raw]
        batch = list(zip(records, events, strict=True))
        await consume_batch(worker.handle_received(batch), outages, backoff)
        metrics.consumer_lag(group, msg.consumer, raw)

    return worker


async def run(settings: Settings, party: Party) -> None:
    outages = Outages(process_name(settings, party.value), log)
    metrics.serve_metrics(settings, metrics.WORKER)
    async with AsyncExitStack() as stack:
        orders = open_orders(settings)
        stack.callback(orders.close)
        resources = await stack.enter_async_context(PostgresResourceDirectory(settings))
        await resources.create_schema()
        parked = await stack.enter_async_context(PostgresParkedMovements(settings))
        await parked.create_schema()
        ledger, chain = await stack.enter_async_context(open_money_movers(settings))
        mover: Mover = (
            EurTreasury(ledger, resources)
            if party is Party.EUR_TREASURY
            else UsdcChain(chain, resources)
        )

        async def load_order(order_id: UUID) -> Order | None:
            return await asyncio.to_thread(orders.order, order_id)

        broker = kafka.broker(settings, client_id=f"otc-{party}", log_level=logging.DEBUG)
        worker = build(
            settings,
            broker,
            lambda publish, dead_letter: TreasuryWorker(
                mover,
                load_order=load_order,
                publish=publish,
                parked=parked,
                dead_letter=dead_letter,
                policy=worker_policy(settings),
            ),
            outages,
        )
        app = FastStream(broker, logger=log)

        @app.after_startup
        async def retry_parked_movements() -> None:
            task = asyncio.create_task(worker.run_parked())
            stack.callback(task.cancel)

        log.info(
            "%s: consuming %s as group %s", party, settings.events_topic, group_of(settings, party)
        )
        async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
            await app.run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.workers")
    parser.add_argument("worker", choices=[party.value for party in Party])
    args = parser.parse_args()
    configure_logging(args.worker)
    asyncio.run(run(Settings(), Party(args.worker)))


if __name__ == "__main__":
    main()
