"""The engine's Kafka side: a batch of commands from `otc.commands` to the processor, and the
replies.

`EngineService.subscribe` puts it on a broker. A batch's records are parsed (a record that does
not parse is dead-lettered and its sender told) and its commands handed to the processor
(services/engine/processor.py: load, look outside, decide and save in one transaction); each
reply is sent as soon as its part of the batch is saved.

Ack semantics: the batch's offsets are committed only after its events are saved and its
replies acknowledged by the broker. An infrastructure failure raises out of `handle`: the batch
is redelivered, which is harmless because every command is idempotent. If the batch save
conflicts (another writer touched one of its aggregates), the batch is redone one command at a
time, each with its own save; a command that keeps failing for a reason of its own is
dead-lettered and its sender gets an error reply. Replies are built only from what was saved,
so nothing is answered before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from services import kafka
from services.batches import header, record_values, records_of
from services.contracts import (
    CORRELATION_ID,
    REPLY_TO,
    CommandEnvelope,
    ErrorBody,
    ReceivedCommand,
    ReplyEnvelope,
    Unparseable,
)
from services.dead_letters import KafkaRecord, dead_letter_headers, summarise
from services.engine import telemetry
from services.engine.processor import Answer, CommandProcessor, Ready
from services.offsets import InOrderCommits
from services.resilience import INFRASTRUCTURE_ERRORS, Backoff, Outages, consume_batch
from services.timings import ENGINE_TIMING, Stages, engine_timing, now_ms

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3

Received = tuple[Any, CommandEnvelope | Unparseable]
"""An aiokafka record (untyped) and its value, parsed (services/batches.py)."""

Send = Callable[[str, bytes, bytes | None, dict[str, str]], Awaitable[Awaitable[Any]]]
"""`send(topic, value, key, headers)` enqueues a message and returns its delivery."""


@dataclass(frozen=True)
class Incoming:
    command: c.Command
    record: Any
    reply_to: str | None
    correlation_id: str | None


class EngineService:
    """The engine's Kafka side around a `CommandProcessor`: parse, dead letters, replies."""

    def __init__(
        self, processor: CommandProcessor, send: Send, *, replies_topic: str, dlq_topic: str
    ) -> None:
        self.processor = processor
        self.send = send
        self.replies_topic = replies_topic
        self.dlq_topic = dlq_topic
        self.commits = InOrderCommits()

    def subscribe(  # noqa: PLR0913 - where and how to consume
        self,
        broker: KafkaBroker,
        topic: str,
        *,
        group_id: str,
        max_records: int,
        outages: Outages,
        backoff: Backoff,
    ) -> None:
        @broker.subscriber(
            topic,
            group_id=group_id,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=kafka.BATCH_WAIT_MS,
            fetch_max_wait_ms=kafka.FETCH_WAIT_MS,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,  # services/offsets.py commits
            parser=without_reply_to,
            decoder=record_values,
            title="on_commands",
            description="The engine: any number of instances in one consumer group; a batch "
            "is committed once its events are saved and its replies delivered, while the next "
            "batch is worked on.",
        )
        async def on_commands(commands: list[ReceivedCommand], msg: KafkaMessage) -> None:
            # The raw records too: a command that does not parse is dead-lettered as its own
            # bytes with its offset, and a reply goes under its record's key to `reply_to`.
            records = records_of(msg)
            batch = list(zip(records, commands, strict=True))
            await consume_batch(self._pipelined(batch, msg.consumer), outages, backoff)
            telemetry.consumed(group_id, msg.consumer, records)

    async def handle(self, batch: Sequence[Received]) -> None:
        """One batch, its replies delivered."""
        await asyncio.gather(*await self._run(batch))

    async def _pipelined(self, batch: Sequence[Received], consumer: object) -> None:
        """One batch, its offsets committed behind its replies (services/offsets.py) while the
        next batch is worked on; anything raised rewinds what is not committed, to come again."""
        records = [record for record, _ in batch]
        broken = self.commits.broken
        if broken is not None:
            await self.commits.rewind(consumer, records)
            raise broken
        try:
            deliveries = await self._run(batch)
        except BaseException:
            await self.commits.rewind(consumer, records)
            raise
        await self.commits.after(consumer, records, deliveries)

    async def _run(self, batch: Sequence[Received]) -> list[Awaitable[Any]]:
        """Parse, process, and send each reply as soon as its part of the batch is saved;
        the replies' deliveries (and the dead letters') are returned, not awaited."""
        started = now_ms()
        deliveries: list[Awaitable[Any]] = []
        incoming: list[Incoming] = []
        for record, received in batch:
            parsed = await self._parse(record, received, deliveries)
            if parsed is not None:
                incoming.append(parsed)

        async def ready(part: list[tuple[int, Answer]]) -> None:
            for index, (reply, stages) in part:
                item = incoming[index]
                queued = started - item.record.timestamp
                telemetry.answered(item.command, reply, item.record, queued)
                if item.reply_to is None:
                    continue
                timing = engine_timing(stages, queued=queued, sent=now_ms())
                deliveries.append(
                    await self._send_reply(
                        item.record, reply, item.reply_to, item.correlation_id, timing
                    )
                )

        await self._process(incoming, deliveries, ready)
        return deliveries

    async def _parse(
        self,
        record: Any,  # noqa: ANN401 - aiokafka records are untyped
        received: CommandEnvelope | Unparseable,
        deliveries: list[Awaitable[Any]],
    ) -> Incoming | None:
        reply_to, correlation_id = header(record, REPLY_TO), header(record, CORRELATION_ID)
        error: Exception
        if isinstance(received, Unparseable):
            error, command_id = received.error, None
        else:
            try:
                return Incoming(received.to_command(), record, reply_to, correlation_id)
            except (ValidationError, DomainError, ValueError) as refused:
                error, command_id = refused, received.command_id
        message = f"unparseable command: {summarise(error)}"
        log.warning(
            "dead-lettering record %s/%s@%s: %s",
            record.topic,
            record.partition,
            record.offset,
            message,
        )
        deliveries.append(await self._dead_letter(record, message))
        if reply_to and command_id:
            error_body = ErrorBody(status=422, code=ErrorCode.VALIDATION_ERROR, message=message)
            reply = ReplyEnvelope(command_id=command_id, ok=False, error=error_body)
            deliveries.append(await self._send_reply(record, reply, reply_to, correlation_id))
        return None

    async def _process(
        self, incoming: list[Incoming], deliveries: list[Awaitable[Any]], ready: Ready
    ) -> None:
        answered: set[int] = set()

        async def heard(part: list[tuple[int, Answer]]) -> None:
            answered.update(index for index, _ in part)
            await ready(part)

        try:
            await self.processor.process_timed([item.command for item in incoming], heard)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            log.exception("batch of %d failed; isolating its commands", len(incoming))
        else:
            return
        for index, item in enumerate(incoming):
            if index not in answered:
                reply = await self._process_isolated(item, deliveries)
                await ready([(index, (reply, Stages()))])

    async def _process_isolated(
        self, item: Incoming, deliveries: list[Awaitable[Any]]
    ) -> ReplyEnvelope:
        """One command, retried a bounded number of times, then dead-lettered."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                replies = await self.processor.process_one(item.command)
                return replies[0]
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as error:  # noqa: BLE001 - any other failure is this command's own
                log.warning(
                    "command %s failed (attempt %d): %s", item.command.command_id, attempt, error
                )
                last = error
                await asyncio.sleep(0.1 * attempt)
        message = f"the command failed {MAX_ATTEMPTS} times: {summarise(last)}"
        deliveries.append(await self._dead_letter(item.record, message))
        failed = ErrorBody(
            status=500, code=ErrorCode.INTERNAL_ERROR, message="the command could not be processed"
        )
        return ReplyEnvelope(command_id=item.command.command_id, ok=False, error=failed)

    async def _send_reply(
        self,
        record: Any,  # noqa: ANN401
        reply: ReplyEnvelope,
        reply_to: str,
        correlation_id: str | None,
        timing: str | None = None,
    ) -> Awaitable[Any]:
        headers = {REPLY_TO: reply_to, CORRELATION_ID: correlation_id or str(reply.command_id)}
        headers.update(telemetry.trace_headers(record))
        if timing is not None:
            headers[ENGINE_TIMING] = timing
        return await self.send(self.replies_topic, reply.to_bytes(), record.key, headers)

    async def _dead_letter(self, record: Any, message: str) -> Awaitable[Any]:  # noqa: ANN401
        """The record as it came, with why; its reply address kept, for `otc dlq replay`."""
        headers = dead_letter_headers(KafkaRecord.of(record), message)
        for name in (REPLY_TO, CORRELATION_ID):
            value = header(record, name)
            if value is not None:
                headers[name] = value
        return await self.send(self.dlq_topic, record.value or b"", record.key, headers)


async def without_reply_to(msg: object, original: Callable[[object], Awaitable[Any]]) -> Any:  # noqa: ANN401
    """Our `reply_to` header names a client instance, not a topic. FastStream would publish the
    handler's return value there on its own request/reply path: blank it, we reply ourselves."""
    message = await original(msg)
    message.reply_to = ""
    return message
