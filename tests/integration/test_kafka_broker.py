"""The broker is a real Apache Kafka: idempotent and transactional producers, committed offsets."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from services import kafka
from services.settings import Settings
from tests.conftest import TopicFactory, unique_name

pytestmark = pytest.mark.integration


async def read_all(
    settings: Settings,
    topic: str,
    *,
    isolation_level: str = "read_uncommitted",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a one-partition topic up to its end offset (the last stable offset when
    reading committed), without a consumer group."""
    consumer = kafka.consumer(
        settings, client_id="otc-tests", isolation_level=isolation_level, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records: list[ConsumerRecord[bytes, bytes]] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            records.extend(batch.get(partition, []))
        return records
    finally:
        await consumer.stop()


async def test_idempotent_producer_delivers_every_message_once_in_order(
    stack_settings: Settings,
    new_topic: TopicFactory,
) -> None:
    topic = await new_topic("idem")
    producer = kafka.producer(stack_settings, client_id="otc-tests")
    await producer.start()
    try:
        sent = [f"m{i}".encode() for i in range(200)]
        results = await asyncio.gather(*[await producer.send(topic, value) for value in sent])
    finally:
        await producer.stop()

    records = await read_all(stack_settings, topic)

    assert [r.value for r in records] == sent
    assert [r.offset for r in results] == list(range(len(sent)))


async def test_transactional_producer_commits_and_aborts(
    stack_settings: Settings,
    new_topic: TopicFactory,
) -> None:
    topic = await new_topic("txn")
    producer = kafka.producer(
        stack_settings, client_id="otc-tests", transactional_id=unique_name("txn-producer")
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-2")
    finally:
        await producer.stop()

    committed = await read_all(stack_settings, topic, isolation_level="read_committed")
    everything = await read_all(stack_settings, topic)

    assert [r.value for r in committed] == [b"committed-1", b"committed-2"]
    assert [r.value for r in everything] == [b"committed-1", b"aborted", b"committed-2"]


async def test_consumer_group_resumes_after_its_last_committed_offset(
    stack_settings: Settings,
    new_topic: TopicFactory,
) -> None:
    topic = await new_topic("group")
    group = unique_name("group")
    producer = kafka.producer(stack_settings, client_id="otc-tests")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"m{i}".encode())

        first = await consume_in_group(stack_settings, topic, group, take=4)
        for i in range(10, 12):
            await producer.send_and_wait(topic, f"m{i}".encode())
        second = await consume_in_group(stack_settings, topic, group, take=8)
    finally:
        await producer.stop()

    assert first == [f"m{i}".encode() for i in range(4)]
    assert second == [f"m{i}".encode() for i in range(4, 12)]


async def consume_in_group(settings: Settings, topic: str, group: str, take: int) -> list[bytes]:
    """Join `group`, take `take` messages one at a time committing each, then leave."""
    consumer = kafka.consumer(
        settings,
        topic,
        client_id="otc-tests",
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    taken: list[bytes] = []
    try:
        while len(taken) < take:
            record = await asyncio.wait_for(consumer.getone(), timeout=20)
            assert record.value is not None
            taken.append(record.value)
            await consumer.commit({TopicPartition(topic, record.partition): record.offset + 1})
    finally:
        await consumer.stop()
    return taken
