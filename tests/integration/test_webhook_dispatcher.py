"""The dispatcher as a real process (`python -m services.webhooks`) on PostgreSQL and a Kafka
broker of the test's own, delivering to a local receiver: nothing is lost through a SIGKILL of
the dispatcher mid-run and a broker restart, each order arrives in version order, and a
duplicate is only ever the same webhook (same webhook-id, same body)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from aiokafka.admin import NewTopic
from pydantic import SecretStr
from standardwebhooks import Webhook

from services import kafka
from services.contracts import EventEnvelope
from services.local.webhook_receiver import LocalReceiver, Received
from services.settings import Settings
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.events import is_customer_facing
from services.webhooks.signing import SecretBox, new_box_key, webhook_id
from services.webhooks.ssrf import UrlGuard
from services.webhooks.store import PostgresWebhookStore
from tests.conftest import unique_name
from tests.infra import ThrowawayKafka
from tests.integration.webhook_orders import buy, read_envelopes, sell, settle_orders
from tests.support import Process, eventually, make_customer

pytestmark = pytest.mark.integration

READY = "webhooks: consuming"
AUTO_COMMIT_SECONDS = 5


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ThrowawayKafka]:
    started = ThrowawayKafka(tmp_path / "kafka").create()
    try:
        yield started
    finally:
        started.destroy()


@pytest.fixture
async def receiver() -> AsyncIterator[LocalReceiver]:
    local = LocalReceiver(delay=0.02)
    await local.start()
    try:
        yield local
    finally:
        await local.stop()


async def webhook_settings(settings: Settings, broker: Settings) -> Settings:
    """`settings` on topics of their own on `broker` (the Kafka part of those settings: the
    stack's or a throwaway broker's, as its admin)."""
    events, dlq = unique_name("events"), unique_name("events-dlq")
    admin = kafka.admin(broker, client_id="otc-tests")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(events, 3, 1), NewTopic(dlq, 1, 1)])
    finally:
        await admin.close()
    return settings.model_copy(
        update={
            "kafka_bootstrap": broker.kafka_bootstrap,
            "kafka_username": broker.kafka_username,
            "kafka_password": broker.kafka_password,
            "events_topic": events,
            "events_dlq_topic": dlq,
            "webhook_group": unique_name("webhooks"),
            "webhook_secrets_key": SecretStr(new_box_key()),
            "webhook_allow_loopback": True,
            "webhook_retry_schedule_seconds": [0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0],
            "webhook_timeout_seconds": 2.0,
            "webhook_endpoint_in_flight": 4,
            "webhook_poll_seconds": 0.1,
        }
    )


async def register(settings: Settings, customer: UUID, url: str) -> tuple[UUID, str]:
    assert settings.webhook_secrets_key is not None
    async with PostgresWebhookStore(settings) as store:
        await store.create_schema()
        endpoints = WebhookEndpoints(
            store,
            UrlGuard(allow_loopback=True),
            SecretBox(settings.webhook_secrets_key.get_secret_value()),
            grace=timedelta(hours=1),
        )
        made = await endpoints.register(customer, url=url)
    return made.endpoint.id, made.secret


async def publish(settings: Settings, envelopes: list[EventEnvelope]) -> None:
    producer = kafka.producer(settings, client_id="otc-tests")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send(
                settings.events_topic, envelope.to_bytes(), key=str(envelope.order_id).encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


def first_receipts(received: list[Received]) -> dict[str, Received]:
    firsts: dict[str, Received] = {}
    for webhook in received:
        firsts.setdefault(webhook.headers["webhook-id"], webhook)
    return firsts


def assert_each_order_in_version_order(received: list[Received], versions: dict[str, int]) -> None:
    """Per order, the first receipt of each webhook came in version order."""
    by_order: dict[str, list[int]] = {}
    for webhook in first_receipts(received).values():
        data = webhook.message["data"]
        assert isinstance(data, dict)
        by_order.setdefault(data["id"], []).append(versions[webhook.headers["webhook-id"]])
    for order, arrived in by_order.items():
        assert arrived == sorted(arrived), f"order {order} arrived as versions {arrived}"


async def test_nothing_is_lost_through_a_sigkill_of_the_dispatcher_and_a_broker_restart(
    settings: Settings, broker: ThrowawayKafka, receiver: LocalReceiver
) -> None:
    config = await webhook_settings(settings, broker.admin_settings())
    customer = await make_customer(config)
    endpoint_id, secret = await register(config, customer.id, receiver.url)
    await settle_orders(
        config, [buy(customer) for _ in range(12)] + [sell(customer) for _ in range(12)]
    )
    every = await read_envelopes(config)
    wanted = [e for e in every if is_customer_facing(e.type)]
    versions = {webhook_id(endpoint_id, e.event_id): e.version for e in wanted}
    first, second, third = every[:40], every[40:80], every[80:]

    await publish(config, first)
    dispatcher = Process("services.webhooks", config, name="webhooks").start()
    dispatcher.wait_for_log(READY)
    await eventually(lambda: len(receiver.received) >= 15, timeout=60)
    dispatcher.kill()
    await publish(config, second)

    dispatcher = Process("services.webhooks", config, name="webhooks").start()
    try:
        dispatcher.wait_for_log(READY)
        await eventually(lambda: len(first_receipts(receiver.received)) >= 50, timeout=60)
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        await publish(config, third)

        await eventually(
            lambda: len(first_receipts(receiver.received)) >= len(versions), timeout=120
        )
    finally:
        dispatcher.stop()

    delivered = first_receipts(receiver.received)
    assert set(delivered) == set(versions)
    assert_each_order_in_version_order(receiver.received, versions)
    for webhook in receiver.received:
        original = delivered[webhook.headers["webhook-id"]]
        assert webhook.body == original.body
        assert Webhook(secret).verify(webhook.body, webhook.headers)
    assert {json.loads(w.body)["type"] for w in delivered.values()} >= {
        "order.quoted",
        "order.paid_out",
    }


async def blocked_on_a_lock(settings: Settings) -> bool:
    async with await psycopg.AsyncConnection.connect(settings.conninfo(), autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (settings.pg_dbname,),
        )
        row = await cursor.fetchone()
    return row is not None and row[0] > 0


async def test_a_batch_is_committed_only_once_its_deliveries_are_recorded(
    settings: Settings, stack_settings: Settings, receiver: LocalReceiver
) -> None:
    """The dispatcher is killed while recording a batch (PostgreSQL holds it on a lock): its
    offsets were not committed, so the next dispatcher records and delivers every event."""
    config = await webhook_settings(settings, stack_settings)
    customer = await make_customer(config)
    endpoint_id, secret = await register(config, customer.id, receiver.url)
    await settle_orders(config, [buy(customer), sell(customer)])
    every = await read_envelopes(config)
    expected = {webhook_id(endpoint_id, e.event_id) for e in every if is_customer_facing(e.type)}
    first = Process("services.webhooks", config, name="webhooks").start()
    try:
        first.wait_for_log(READY)
        async with await psycopg.AsyncConnection.connect(config.conninfo()) as blocker:
            await blocker.execute("LOCK TABLE webhooks.events IN ACCESS EXCLUSIVE MODE")
            await publish(config, every)
            await eventually(lambda: blocked_on_a_lock(config), timeout=30)
            # Longer than a consumer's auto-commit interval (5 s): a dispatcher that committed
            # on its own schedule, not after recording, would have committed by now.
            await asyncio.sleep(AUTO_COMMIT_SECONDS + 1)
            first.kill()
    finally:
        first.stop()
    assert receiver.received == []

    second = Process("services.webhooks", config, name="webhooks").start()
    try:
        await eventually(lambda: set(first_receipts(receiver.received)) >= expected, timeout=90)
    finally:
        second.stop()
    assert all(Webhook(secret).verify(w.body, w.headers) for w in receiver.received)
