"""The engine's Kafka side: a batch of received commands processed, replied to, and the rest
dead-lettered.

Ack semantics: the subscriber commits the batch's offsets only after this returns, that is
after the events are saved and the replies acknowledged by the broker. An infrastructure failure
raises out of here; the subscriber then rewinds and the whole batch is redelivered, which is
harmless because every command is idempotent. A record that cannot be parsed, or whose command
keeps failing for a reason of its own, goes to the dead-letter topic with the error, and its
sender gets an error reply: the partition never stalls and nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool
from aiokafka.errors import KafkaError
from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from domain import commands as c
from domain.errors import DomainError, ErrorCode
from services.contracts import (
    CORRELATION_ID,
    ERROR_HEADER,
    REPLY_TO,
    CommandEnvelope,
    ErrorBody,
    ReplyEnvelope,
    Unparseable,
)
from services.engine.processor import CommandProcessor

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    PersistenceError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    KafkaError,
    OSError,
)
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


def header(record: Any, name: str) -> str | None:  # noqa: ANN401 - aiokafka records are untyped
    for key, value in record.headers or ():
        if key == name and value is not None:
            return bytes(value).decode()
    return None


class EngineService:
    def __init__(
        self,
        processor: CommandProcessor,
        send: Send,
        *,
        replies_topic: str,
        dlq_topic: str,
    ) -> None:
        self.processor = processor
        self.send = send
        self.replies_topic = replies_topic
        self.dlq_topic = dlq_topic

    async def handle(self, batch: Sequence[Received]) -> None:
        deliveries: list[Awaitable[Any]] = []
        incoming: list[Incoming] = []
        for record, received in batch:
            parsed = await self._parse(record, received, deliveries)
            if parsed is not None:
                incoming.append(parsed)
        replies = await self._process(incoming, deliveries)
        for item, reply in zip(incoming, replies, strict=True):
            deliveries.append(await self._reply(item, reply))
        await asyncio.gather(*deliveries)

    async def _parse(
        self,
        record: Any,  # noqa: ANN401 - aiokafka records are untyped
        received: CommandEnvelope | Unparseable,
        deliveries: list[Awaitable[Any]],
    ) -> Incoming | None:
        error: Exception
        if isinstance(received, Unparseable):
            error, command_id = received.error, None
        else:
            try:
                command = received.to_command()
            except (ValidationError, DomainError, ValueError) as refused:
                error, command_id = refused, received.command_id
            else:
                return Incoming(
                    command, record, header(record, REPLY_TO), header(record, CORRELATION_ID)
                )
        message = f"unparseable command: {summarise(error)}"
        log.warning(
            "dead-lettering record %s/%s@%s: %s",
            record.topic,
            record.partition,
            record.offset,
            message,
        )
        deliveries.append(await self._dead_letter(record, message))
        reply_to = header(record, REPLY_TO)
        if reply_to and command_id:
            reply = ReplyEnvelope(
                command_id=command_id,
                ok=False,
                error=ErrorBody(status=422, code=ErrorCode.VALIDATION_ERROR, message=message),
            )
            deliveries.append(
                await self._send_reply(record, reply, reply_to, header(record, CORRELATION_ID))
            )
        return None

    async def _process(
        self, incoming: list[Incoming], deliveries: list[Awaitable[Any]]
    ) -> list[ReplyEnvelope]:
        try:
            return await self.processor.process([item.command for item in incoming])
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            log.exception("batch of %d failed; isolating its commands", len(incoming))
        return [await self._process_isolated(item, deliveries) for item in incoming]

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
        return ReplyEnvelope(
            command_id=item.command.command_id,
            ok=False,
            error=ErrorBody(
                status=500,
                code=ErrorCode.INTERNAL_ERROR,
                message="the command could not be processed",
            ),
        )

    async def _reply(self, item: Incoming, reply: ReplyEnvelope) -> Awaitable[Any]:
        if item.reply_to is None:
            return asyncio.sleep(0)
        return await self._send_reply(item.record, reply, item.reply_to, item.correlation_id)

    async def _send_reply(
        self,
        record: Any,  # noqa: ANN401
        reply: ReplyEnvelope,
        reply_to: str,
        correlation_id: str | None,
    ) -> Awaitable[Any]:
        headers = {REPLY_TO: reply_to, CORRELATION_ID: correlation_id or str(reply.command_id)}
        return await self.send(self.replies_topic, reply.to_bytes(), record.key, headers)

    async def _dead_letter(self, record: Any, message: str) -> Awaitable[Any]:  # noqa: ANN401
        headers = {
            ERROR_HEADER: message[:1000],
            "original_topic": record.topic,
            "original_partition": str(record.partition),
            "original_offset": str(record.offset),
        }
        for key, value in record.headers or ():
            if key in (REPLY_TO, CORRELATION_ID) and value is not None:
                headers[key] = bytes(value).decode()
        return await self.send(self.dlq_topic, record.value or b"", record.key, headers)


def summarise(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    return f"{type(error).__name__}: {error}"[:500]
