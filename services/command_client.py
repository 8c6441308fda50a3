"""The command client for upstream gateways, workers and tests: publish a command to
`otc.commands` and, when asked, wait for the engine's reply on `otc.replies`.

Replies are correlated here, not by FastStream's request/reply (which does not work on a real
broker): each client instance has an id it puts in the `reply_to` header, reads every partition
of the replies topic from the moment it starts, and keeps the replies addressed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from domain.commands import Command
from services import kafka
from services.contracts import CORRELATION_ID, REPLY_TO, TRACE_ID, CommandEnvelope, ReplyEnvelope
from services.logs import current
from services.producers import RenewingProducer
from services.settings import Settings
from services.timings import ENGINE_TIMING, now_ms, parse_timing

log = logging.getLogger(__name__)


class CommandTimeoutError(TimeoutError):
    """No reply in time. The command may still complete: retrying it is safe."""


class CommandNotSentError(KafkaTimeoutError):  # type: ignore[misc] # aiokafka is untyped
    """The broker did not acknowledge the command in time (Kafka is away). The producer may
    still deliver it later, so it may yet complete: retrying it is safe."""


@dataclass(frozen=True)
class Answered:
    """A reply with where its time went: the engine's stages (its `engine-timing` header,
    services/timings.py) and this client's own, in milliseconds."""

    reply: ReplyEnvelope
    engine_timing: str | None
    received_ms: float
    """When the reply came in (milliseconds since the epoch)."""
    publish_ms: float = 0.0
    """Until the broker acknowledged the command."""

    def stages(self) -> dict[str, float]:
        """publish, the engine's queue/load/outside/save, and the reply's transit."""
        engine = parse_timing(self.engine_timing)
        sent = engine.pop("sent", None)
        engine.pop("batch", None)
        stages = {"publish": self.publish_ms, **engine}
        if sent is not None:
            stages["reply"] = max(self.received_ms - sent, 0.0)
        return stages


class CommandClient:
    def __init__(self, settings: Settings, *, instance_id: str | None = None) -> None:
        self.settings = settings
        self.instance_id = instance_id or f"client-{uuid.uuid4().hex[:12]}"
        self._producer = RenewingProducer(
            lambda: kafka.producer(settings, client_id=self.instance_id),
            name=self.instance_id,
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._waiting: dict[str, asyncio.Future[Answered]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self, *, replies: bool = True) -> None:
        await self._producer.start()
        if not replies:
            return
        consumer = kafka.consumer(
            self.settings, client_id=self.instance_id, enable_auto_commit=False
        )
        await consumer.start()
        partitions = await self._partitions(consumer, self.settings.replies_topic)
        assigned = [TopicPartition(self.settings.replies_topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for partition in assigned:
            await consumer.position(partition)  # resolve now: no reply can slip past
        self._consumer = consumer
        self._reader = asyncio.create_task(self._read_replies(consumer), name="command-replies")

    @staticmethod
    async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
        """The topic's partitions, asking for metadata until the broker knows it (a new topic
        takes a moment to appear)."""
        for _ in range(50):
            # consumer.topics() fetches metadata but partitions_for_topic() reads a cache that
            # the fetch does not update: read the fetched cluster itself.
            cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001
            partitions: set[int] | None = cluster.partitions_for_topic(topic)
            if partitions:
                return partitions
            await asyncio.sleep(0.2)
        await consumer.stop()
        raise RuntimeError(f"topic {topic} does not exist")

    async def stop_quietly(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a bound
        """Stop even when the broker is gone: give up flushing after `timeout` seconds."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.stop(), timeout=timeout)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()
        await self._producer.stop()
        for future in self._waiting.values():
            future.cancel()

    async def publish(
        self, command: Command, *, reply_to: str | None = None, correlation_id: str | None = None
    ) -> None:
        """Publish and wait for the broker's acknowledgement, not for the engine."""
        headers = [(CORRELATION_ID, (correlation_id or str(command.command_id)).encode())]
        if reply_to is not None:
            headers.append((REPLY_TO, reply_to.encode()))
        headers.extend(trace_header())
        await self._producer.send_and_wait(
            self.settings.commands_topic,
            CommandEnvelope.of(command).to_bytes(),
            key=str(command.order_id).encode(),
            headers=headers,
        )

    async def send(self, command: Command, *, timeout: float = 10.0) -> ReplyEnvelope:  # noqa: ASYNC109 - the timeout is the contract
        """Publish and wait for the engine's reply, `timeout` seconds in all. Raises
        CommandNotSentError when the broker does not take the command in time, and
        CommandTimeoutError when it did but no reply came."""
        return (await self.send_timed(command, timeout=timeout)).reply

    async def send_timed(self, command: Command, *, timeout: float = 10.0) -> Answered:  # noqa: ASYNC109
        """`send`, the reply with where its time went."""
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[Answered] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            started = loop.time()
            try:
                async with asyncio.timeout_at(deadline):
                    await self.publish(
                        command, reply_to=self.instance_id, correlation_id=correlation_id
                    )
            except TimeoutError:
                raise CommandNotSentError(
                    f"the broker did not take command {command.command_id} in {timeout}s"
                ) from None
            published = (loop.time() - started) * 1000
            try:
                async with asyncio.timeout_at(deadline):
                    answered = await future
            except TimeoutError:
                raise CommandTimeoutError(
                    f"no reply to command {command.command_id} in {timeout}s"
                ) from None
            return replace(answered, publish_ms=published)
        finally:
            self._waiting.pop(correlation_id, None)

    async def send_all(
        self,
        commands: list[Command],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - the timeout is the contract
    ) -> list[ReplyEnvelope]:
        """Publish several commands in order without waiting in between (they share a partition
        when they share an order), then wait for all their replies, in the same order."""
        futures: list[asyncio.Future[Answered]] = []
        correlation_ids = []
        deliveries = []
        try:
            for command in commands:
                correlation_id = uuid.uuid4().hex
                future: asyncio.Future[Answered] = asyncio.get_running_loop().create_future()
                self._waiting[correlation_id] = future
                correlation_ids.append(correlation_id)
                futures.append(future)
                deliveries.append(
                    await self._producer.send(
                        self.settings.commands_topic,
                        CommandEnvelope.of(command).to_bytes(),
                        key=str(command.order_id).encode(),
                        headers=[
                            (CORRELATION_ID, correlation_id.encode()),
                            (REPLY_TO, self.instance_id.encode()),
                            *trace_header(),
                        ],
                    ),
                )
            await asyncio.gather(*deliveries)
            answers = await asyncio.wait_for(asyncio.gather(*futures), timeout)
            return [answered.reply for answered in answers]
        except TimeoutError:
            raise CommandTimeoutError(
                f"no reply to {len(commands)} commands in {timeout}s"
            ) from None
        finally:
            for correlation_id in correlation_ids:
                self._waiting.pop(correlation_id, None)

    async def _read_replies(self, consumer: AIOKafkaConsumer) -> None:
        """Read replies for as long as the client runs: a broker outage only pauses this (the
        consumer reconnects), it never ends it."""
        while True:
            try:
                batches: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=500)
            except KafkaError as error:
                log.debug("%s: reading replies failed: %s", self.instance_id, error)
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self._deliver(record)

    def _deliver(self, record: Any) -> None:  # noqa: ANN401 - aiokafka records are untyped
        headers = {
            key: bytes(value).decode() for key, value in record.headers or () if value is not None
        }
        if headers.get(REPLY_TO) != self.instance_id:
            return
        future = self._waiting.get(headers.get(CORRELATION_ID, ""))
        if future is None or future.done():
            return
        try:
            reply = ReplyEnvelope.model_validate_json(record.value)
        except ValueError as error:
            future.set_exception(error)
        else:
            future.set_result(Answered(reply, headers.get(ENGINE_TIMING), now_ms()))


def trace_header() -> list[tuple[str, bytes]]:
    """The `trace_id` header of a command sent now: the trace the sender's logs follow (the
    gateway's request id), if one is bound (services/logs.py)."""
    trace = current("trace_id")
    return [] if trace is None else [(TRACE_ID, trace.encode())]
