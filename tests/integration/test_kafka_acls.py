"""The broker's authentication and ACLs: every client authenticates, and each process kind's
principal may do what services/kafka_acls.py grants it and nothing else.

Refusals are tried on the system's own topics and groups, with the ACLs `deploy/local/up` made
(a refused write leaves nothing behind). What is allowed is tried on topics and groups of this
module's own, with the same table granted for their names, so that nothing lands where a running
system would read it. The end-to-end tests run every process as its principal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from services import kafka
from services.cli.dlq import Which, list_dead_letters, replay_dead_letters
from services.command_client import CommandClient
from services.gateway.readiness import KafkaLags
from services.kafka_acls import Principal
from services.settings import Settings
from tests.conftest import as_kafka_user, unique_name
from tests.support import acls_granted, read_topic

pytestmark = pytest.mark.integration

TOPIC_AUTHORIZATION_FAILED = 29


@pytest.fixture(scope="module")
async def own(stack_settings: Settings) -> AsyncIterator[Settings]:
    """Topics and groups of this module's own, with the table's ACLs granted for their names."""
    topics = {
        "commands_topic": unique_name("acl-commands"),
        "replies_topic": unique_name("acl-replies"),
        "events_topic": unique_name("acl-events"),
        "dlq_topic": unique_name("acl-dlq"),
        "events_dlq_topic": unique_name("acl-events-dlq"),
    }
    groups = {
        name: unique_name(f"acl-{name}")
        for name in ("engine_group", "eur_worker_group", "chain_worker_group", "webhook_group")
    }
    admin = kafka.admin(stack_settings, client_id="otc-tests")
    await admin.start()
    await admin.create_topics([NewTopic(name, 1, 1) for name in topics.values()])
    settings = stack_settings.model_copy(update={**topics, **groups})
    try:
        with acls_granted(settings):
            yield settings
    finally:
        await admin.delete_topics(list(topics.values()))
        await admin.close()


def as_principal(settings: Settings, principal: Principal) -> Settings:
    return as_kafka_user(settings, principal)


async def produce(settings: Settings, topic: str, value: bytes = b"acl-test") -> None:
    producer = kafka.producer(settings, client_id="otc-tests", request_timeout_ms=10_000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=b"acl-test")
    finally:
        await producer.stop()


async def consume_one(settings: Settings, topic: str, group: str) -> bytes | None:
    """Join `group` on `topic`, take one record and commit past it."""
    consumer = kafka.consumer(
        settings,
        topic,
        client_id="otc-tests",
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
        value: bytes | None = record.value
        return value
    finally:
        await consumer.stop()


async def test_a_client_without_credentials_is_refused(stack_settings: Settings) -> None:
    # Made by hand on purpose: services/kafka.py makes no client without credentials.
    producer = AIOKafkaProducer(
        bootstrap_servers=stack_settings.kafka_bootstrap, request_timeout_ms=5_000
    )

    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_a_wrong_password_is_refused(stack_settings: Settings) -> None:
    relay = as_principal(stack_settings, Principal.RELAY)
    wrong = relay.model_copy(update={"kafka_password": SecretStr(uuid.uuid4().hex)})

    # A topic the relay may not write either: whatever goes wrong, nothing is written.
    with pytest.raises(KafkaConnectionError):
        await produce(wrong, stack_settings.dlq_topic)


@pytest.mark.parametrize(
    "principal",
    [Principal.EUR_TREASURY, Principal.USDC_CHAIN, Principal.WEBHOOKS, Principal.GATEWAY],
)
async def test_only_the_relay_and_operators_may_write_order_events(
    stack_settings: Settings, principal: Principal
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(as_principal(stack_settings, principal), stack_settings.events_topic)


@pytest.mark.parametrize(
    "principal",
    [Principal.GATEWAY, Principal.EUR_TREASURY, Principal.RELAY, Principal.OPERATOR],
)
async def test_only_the_engine_may_write_replies(
    stack_settings: Settings, principal: Principal
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(as_principal(stack_settings, principal), stack_settings.replies_topic)


@pytest.mark.parametrize("principal", [Principal.RELAY, Principal.ENGINE])
async def test_a_process_that_sends_no_commands_may_not_write_them(
    stack_settings: Settings, principal: Principal
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(as_principal(stack_settings, principal), stack_settings.commands_topic)


async def test_the_relay_may_write_order_events(own: Settings) -> None:
    await produce(as_principal(own, Principal.RELAY), own.events_topic, b"from the relay")

    assert b"from the relay" in [record.value for record in await read_topic(own, own.events_topic)]


@pytest.mark.parametrize(
    "principal",
    [
        Principal.GATEWAY,
        Principal.SWEEPER,
        Principal.EUR_TREASURY,
        Principal.USDC_CHAIN,
        Principal.OPERATOR,
    ],
)
async def test_the_senders_of_commands_may_write_them(own: Settings, principal: Principal) -> None:
    await produce(as_principal(own, principal), own.commands_topic, principal.encode())

    assert principal.encode() in [
        record.value for record in await read_topic(own, own.commands_topic)
    ]


@pytest.mark.parametrize(
    ("principal", "group"),
    [
        (Principal.EUR_TREASURY, "chain_worker_group"),
        (Principal.USDC_CHAIN, "eur_worker_group"),
        (Principal.WEBHOOKS, "eur_worker_group"),
    ],
)
async def test_a_principal_may_not_consume_as_a_group_it_has_no_acl_for(
    own: Settings, principal: Principal, group: str
) -> None:
    await produce(as_principal(own, Principal.RELAY), own.events_topic)

    with pytest.raises(GroupAuthorizationFailedError):
        await consume_one(as_principal(own, principal), own.events_topic, getattr(own, group))


async def test_a_worker_may_not_read_commands(own: Settings) -> None:
    await produce(as_principal(own, Principal.GATEWAY), own.commands_topic)

    worker = as_principal(own, Principal.EUR_TREASURY)

    with pytest.raises(TopicAuthorizationFailedError):
        await consume_one(worker, own.commands_topic, own.eur_worker_group)


async def test_a_process_may_not_create_topics(stack_settings: Settings) -> None:
    admin = kafka.admin(as_principal(stack_settings, Principal.ENGINE), client_id="otc-tests")
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(unique_name("acl-made"), 1, 1)])
    finally:
        await admin.close()

    assert [error_code for _, error_code, *_ in response.topic_errors] == [
        TOPIC_AUTHORIZATION_FAILED
    ]


async def test_the_webhook_dispatcher_may_consume_order_events_in_its_group(
    own: Settings,
) -> None:
    await produce(as_principal(own, Principal.RELAY), own.events_topic, b"for webhooks")
    webhooks = as_principal(own, Principal.WEBHOOKS)

    assert await consume_one(webhooks, own.events_topic, own.webhook_group) is not None
    await produce(webhooks, own.events_dlq_topic, b"a dead webhook")


async def test_an_operator_may_list_and_replay_what_a_worker_dead_lettered(
    own: Settings,
) -> None:
    letter = f"dead-{uuid.uuid4().hex}".encode()
    await produce(as_principal(own, Principal.EUR_TREASURY), own.events_dlq_topic, letter)
    operator = as_principal(own, Principal.OPERATOR)

    listed = await list_dead_letters(operator, Which.EVENTS)
    replayed = await replay_dead_letters(operator, Which.EVENTS)

    assert letter in [d.value for d in listed]
    assert letter in [d.value for d in replayed]
    assert letter in [record.value for record in await read_topic(own, own.events_topic)]


async def test_an_operator_may_wait_for_the_engines_replies(own: Settings) -> None:
    async with CommandClient(as_principal(own, Principal.OPERATOR)) as client:
        assert client.instance_id


async def test_the_gateway_may_see_how_far_the_engine_and_the_workers_are_behind(
    own: Settings,
) -> None:
    await produce(as_principal(own, Principal.RELAY), own.events_topic)
    lags = KafkaLags(as_principal(own, Principal.GATEWAY))
    try:
        engine = await lags.group_lag(own.engine_group, own.commands_topic)
        workers = [
            await lags.group_lag(group, own.events_topic)
            for group in (own.eur_worker_group, own.chain_worker_group)
        ]
    finally:
        await lags.close()

    assert engine >= 0
    assert min(workers) >= 1


async def test_the_gateway_may_not_consume_as_the_engine(own: Settings) -> None:
    gateway = as_principal(own, Principal.GATEWAY)

    with pytest.raises(GroupAuthorizationFailedError):
        await consume_one(gateway, own.replies_topic, own.engine_group)
