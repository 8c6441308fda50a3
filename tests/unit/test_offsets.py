"""Offsets committed in order behind their replies (services/offsets.py): a batch is committed
only once its replies and every earlier batch's are delivered; a batch whose replies fail
breaks the chain, nothing later is committed, and a rewind seeks every partition back to its
earliest offset not committed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata

from services.offsets import InOrderCommits

P0, P1 = TopicPartition("commands", 0), TopicPartition("commands", 1)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int


@dataclass
class Consumer:
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    seeks: dict[TopicPartition, int] = field(default_factory=dict)

    def assignment(self) -> set[TopicPartition]:
        return {P0, P1}

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset


def records(partition: int, *offsets: int) -> list[Record]:
    return [Record("commands", partition, offset) for offset in offsets]


async def test_batches_are_committed_in_order_once_their_replies_are_delivered() -> None:
    consumer, commits = Consumer(), InOrderCommits()
    first_replies: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    second_replies: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    second_replies.set_result(None)

    await commits.after(consumer, records(0, 10, 11), [first_replies])
    await commits.after(consumer, records(0, 12) + records(1, 3), [second_replies])
    await asyncio.sleep(0.01)
    assert consumer.commits == []  # the second's replies are out, but not the first's

    first_replies.set_result(None)
    await commits.drain()
    assert consumer.commits == [{P0: 12}, {P0: 13, P1: 4}]


async def test_undelivered_replies_break_the_chain_and_a_rewind_seeks_back() -> None:
    consumer, commits = Consumer(), InOrderCommits()
    delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    delivered.set_result(None)
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(KafkaConnectionError("broker away"))

    await commits.after(consumer, records(0, 10), [delivered])
    await commits.after(consumer, records(0, 11, 12), [failed])
    await commits.after(consumer, records(1, 5), [delivered])
    await commits.drain()
    assert consumer.commits == [{P0: 11}]  # not the failed batch, nor the one after it
    assert commits.broken is not None

    await commits.rewind(consumer, records(1, 6))
    assert consumer.seeks == {P0: 11, P1: 5}
    assert commits.broken is None
