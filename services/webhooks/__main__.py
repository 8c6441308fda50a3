"""The webhook dispatcher process: `python -m services.webhooks`.

It consumes `otc.order-events` in its own consumer group (OTC_WEBHOOK_GROUP) and records the
deliveries of each batch before committing its offsets (services/webhooks/dispatcher.py), and
runs the sender beside it (services/webhooks/sender.py), woken as soon as deliveries are
recorded. `build` wires a dispatcher to its ports and subscribes it; `main` passes the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from uuid import UUID

from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from domain.views import OrderView
from services import kafka, metrics
from services.batches import record_values, records_of
from services.contracts import DeadLetterBody, ReceivedEvent
from services.dead_letters import KafkaRecord, dead_letter_headers
from services.engine.event_store import open_orders
from services.logs import configure_logging
from services.resilience import Backoff, Dependency, Outages, consume_batch
from services.settings import Settings
from services.vitals import process_name, vitals_running
from services.webhooks.dispatcher import NAME, Dispatcher, LoadViews
from services.webhooks.poster import HttpPoster
from services.webhooks.schedule import RetrySchedule
from services.webhooks.sender import Post, Sender, SenderPolicy
from services.webhooks.signing import SecretBox
from services.webhooks.ssrf import UrlGuard
from services.webhooks.store import PostgresWebhookStore, WebhookStore
from services.webhooks.views import Wanted, views_at

log = logging.getLogger("otc.webhooks")


def sender_policy(settings: Settings) -> SenderPolicy:
    return SenderPolicy(
        schedule=RetrySchedule(waits=tuple(settings.webhook_retry_schedule_seconds)),
        max_in_flight=settings.webhook_max_in_flight,
        per_endpoint=settings.webhook_endpoint_in_flight,
        timeout_seconds=settings.webhook_timeout_seconds,
        poll_seconds=settings.webhook_poll_seconds,
    )


def secret_box(settings: Settings) -> SecretBox:
    if settings.webhook_secrets_key is None:
        raise SystemExit("webhooks: OTC_WEBHOOK_SECRETS_KEY is required to sign deliveries")
    return SecretBox(settings.webhook_secrets_key.get_secret_value())


@dataclass(frozen=True)
class Webhooks:
    dispatcher: Dispatcher
    sender: Sender


def build(  # noqa: PLR0913 - the process's ports
    settings: Settings,
    broker: KafkaBroker,
    *,
    store: WebhookStore,
    load_views: LoadViews,
    post: Post,
    box: SecretBox,
    outages: Outages | None = None,
) -> Webhooks:
    """The dispatcher subscribed to the order events (dead letters to `otc.order-events.dlq`),
    and the sender it wakes when it records deliveries."""
    to_dead_letters = broker.publisher(
        settings.events_dlq_topic,
        title="to_order_events_dlq",
        schema=DeadLetterBody,
        description="Order events the dispatcher cannot handle after bounded retries.",
    )

    async def dead_letter(record: KafkaRecord, error: str) -> None:
        headers = dead_letter_headers(record, error, consumer=NAME)
        await to_dead_letters.publish(record.value, key=record.key, headers=headers)

    outages = outages or Outages(NAME, log)
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
    sender = Sender(store, post, box, policy=sender_policy(settings))
    dispatcher = Dispatcher(
        store,
        load_views=load_views,
        dead_letter=dead_letter,
        attempts=settings.worker_event_attempts,
        recorded=sender.wake,
    )

    @broker.subscriber(
        settings.events_topic,
        group_id=settings.webhook_group,
        batch=True,
        max_records=500,
        batch_timeout_ms=kafka.BATCH_WAIT_MS,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=record_values,
        title="on_order_events (webhooks)",
        description="The webhook dispatcher: records a delivery per event and endpoint.",
    )
    async def on_order_events(events: list[ReceivedEvent], msg: KafkaMessage) -> None:
        """Commit only after every delivery of the batch is recorded (or its event
        dead-lettered); an infrastructure failure redelivers the batch, which records nothing
        twice."""
        # The raw records too: an event that does not parse is dead-lettered as its own bytes
        # with its topic, partition and offset.
        raw = records_of(msg)
        records = [KafkaRecord.of(record) for record in raw]
        batch = list(zip(records, events, strict=True))
        await consume_batch(dispatcher.handle_received(batch), outages, backoff)
        metrics.consumer_lag(settings.webhook_group, msg.consumer, raw)

    return Webhooks(dispatcher, sender)


async def run(settings: Settings) -> None:
    box = secret_box(settings)
    outages = Outages(process_name(settings, NAME), log)
    metrics.serve_metrics(settings, metrics.WEBHOOKS)
    async with AsyncExitStack() as stack:
        orders = open_orders(settings)
        stack.callback(orders.close)
        store = await stack.enter_async_context(PostgresWebhookStore(settings))
        await store.create_schema()
        guard = UrlGuard(allow_loopback=settings.webhook_allow_loopback)
        poster = HttpPoster(
            guard,
            timeout_seconds=settings.webhook_timeout_seconds,
            per_url=settings.webhook_endpoint_in_flight,
        )
        stack.push_async_callback(poster.aclose)

        async def load_views(wanted: Wanted) -> dict[tuple[UUID, int], OrderView]:
            return await asyncio.to_thread(views_at, orders, wanted)

        broker = kafka.broker(settings, client_id="otc-webhooks", log_level=logging.DEBUG)
        webhooks = build(
            settings,
            broker,
            store=store,
            load_views=load_views,
            post=poster,
            box=box,
            outages=outages,
        )
        app = FastStream(broker, logger=log)
        sending: list[asyncio.Task[None]] = []

        @app.after_startup
        async def start_sending() -> None:
            sending.append(asyncio.create_task(webhooks.sender.run()))

        @app.on_shutdown
        async def stop_sending() -> None:
            for task in sending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        log.info(
            "%s: consuming %s as group %s", NAME, settings.events_topic, settings.webhook_group
        )
        async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
            await app.run()


def main() -> None:
    configure_logging(NAME)
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
