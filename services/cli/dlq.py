"""`otc dlq list` and `otc dlq replay`: the dead-letter topics, seen and re-driven by operators.

`otc.order-events.dlq` holds events a worker (or the webhook dispatcher) could not handle, with
the worker's name and the error; `otc.commands.dlq` commands the engine could not. `list` prints
each dead letter as a JSON line, marking those already replayed. `replay` publishes the ones not
yet replayed back to the topic they came from (`original_topic`), as they were (consumers are
idempotent, so a replay changes nothing that was already done), and records how far it got in the
consumer group `otc-dlq-replay` (per dead-letter topic and partition).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from services import kafka
from services.contracts import ERROR_HEADER
from services.kafka_acls import REPLAY_GROUP
from services.settings import Settings

dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter topics: list and replay.")

READ_SECONDS = 30.0
"""How long reading a dead-letter topic to its end may take before giving up on the rest."""


class Which(StrEnum):
    EVENTS = "events"
    COMMANDS = "commands"


def dlq_topic(settings: Settings, which: Which) -> str:
    return settings.events_dlq_topic if which is Which.EVENTS else settings.dlq_topic


def home_topic(settings: Settings, which: Which) -> str:
    return settings.events_topic if which is Which.EVENTS else settings.commands_topic


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool

    def view(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "key": None if self.key is None else self.key.decode(errors="replace"),
            "worker": self.headers.get("worker"),
            "error": self.headers.get(ERROR_HEADER),
            "originalTopic": self.headers.get("original_topic"),
            "originalOffset": self.headers.get("original_offset"),
            "replayed": self.replayed,
            "value": self.value.decode(errors="replace")[:2000],
        }


@asynccontextmanager
async def dlq_reader(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = kafka.consumer(
        settings,
        client_id="otc-dlq",
        group_id=f"{REPLAY_GROUP}.{topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def partitions_of(settings: Settings, topic: str) -> list[int]:
    """The topic's partitions, from a metadata request (a consumer assigned by hand keeps no
    metadata of its own for a topic it does not subscribe to)."""
    admin = kafka.admin(settings, client_id="otc-dlq")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        part["partition"]
        for found in described
        if found["topic"] == topic
        for part in found["partitions"]
    )


async def read_all(settings: Settings, consumer: AIOKafkaConsumer, topic: str) -> list[DeadLetter]:
    """Every dead letter now in the topic, each marked replayed or not."""
    partitions = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    if not partitions:
        return []
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    committed = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
    found: list[DeadLetter] = []
    for tp in partitions:
        consumer.seek(tp, 0)
    pending = {tp for tp in partitions if ends[tp] > 0}
    deadline = asyncio.get_running_loop().time() + READ_SECONDS
    while pending and asyncio.get_running_loop().time() < deadline:
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                headers = {k: bytes(v).decode(errors="replace") for k, v in record.headers or ()}
                found.append(
                    DeadLetter(
                        partition=tp.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value or b"",
                        headers=headers,
                        replayed=record.offset < committed[tp],
                    )
                )
            if records and records[-1].offset + 1 >= ends[tp]:
                pending.discard(tp)
    return sorted(found, key=lambda d: (d.partition, d.offset))


async def list_dead_letters(settings: Settings, which: Which) -> list[DeadLetter]:
    topic = dlq_topic(settings, which)
    async with dlq_reader(settings, topic) as consumer:
        return await read_all(settings, consumer, topic)


async def replay_dead_letters(settings: Settings, which: Which) -> list[DeadLetter]:
    """Publish every dead letter not yet replayed back to its topic; then record the replay."""
    topic = dlq_topic(settings, which)
    producer = kafka.producer(settings, client_id="otc-dlq-replay")
    await producer.start()
    try:
        async with dlq_reader(settings, topic) as consumer:
            letters = [d for d in await read_all(settings, consumer, topic) if not d.replayed]
            for letter in letters:
                target = letter.headers.get("original_topic") or home_topic(settings, which)
                replayed_headers = [
                    ("replayed_from", f"{topic}:{letter.partition}:{letter.offset}")
                ]
                await producer.send_and_wait(
                    target,
                    letter.value,
                    key=letter.key,
                    headers=[(k, v.encode()) for k, v in replayed_headers],
                )
            marks: dict[TopicPartition, OffsetAndMetadata] = {}
            for letter in letters:
                marks[TopicPartition(topic, letter.partition)] = OffsetAndMetadata(
                    letter.offset + 1, ""
                )
            if marks:
                await consumer.commit(marks)
    finally:
        await producer.stop()
    return letters


WhichOption = Annotated[Which, typer.Option("--topic", help="which dead-letter topic")]


@dlq_app.command("list")
def list_command(which: WhichOption = Which.EVENTS) -> None:
    """Every dead letter, one JSON line each (replayed ones marked)."""
    for letter in asyncio.run(list_dead_letters(Settings(), which)):
        typer.echo(json.dumps(letter.view()))


@dlq_app.command("replay")
def replay_command(which: WhichOption = Which.EVENTS) -> None:
    """Publish the dead letters not yet replayed back to the topic they came from."""
    letters = asyncio.run(replay_dead_letters(Settings(), which))
    typer.echo(
        json.dumps(
            {
                "replayed": len(letters),
                "letters": [{"partition": d.partition, "offset": d.offset} for d in letters],
            }
        )
    )
