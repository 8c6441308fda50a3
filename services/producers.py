"""An idempotent Kafka producer that renews itself when the broker refuses it for good.

While the broker is away, aiokafka's idempotent producer keeps its batches and retries them (it
never expires them), and carries on once the broker is back. What it cannot get over is a broker
that lost track of its sequence numbers (`OutOfOrderSequenceNumber`, after a broker restart with
messages in flight) or that fenced it: every later send fails the same way. `RenewingProducer`
then replaces it with a fresh producer (a new producer id); the send that failed raises, so its
caller retries it, which is safe because every message here is idempotent downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber, ProducerClosed, ProducerFenced

log = logging.getLogger(__name__)

BROKEN: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    ProducerClosed,
)


class RenewingProducer:
    def __init__(self, make: Callable[[], AIOKafkaProducer], name: str) -> None:
        """`make` builds a producer (not started); `name` is for the log."""
        self._make = make
        self._name = name
        self._producer: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()
        self._stopped = False

    async def start(self) -> None:
        self._producer = await started(self._make())

    async def stop(self) -> None:
        self._stopped = True
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        """Enqueue; returns the delivery (awaiting it waits for the broker's acknowledgement)."""
        producer = self._current()
        try:
            delivery = await producer.send(topic, value, key=key, headers=list(headers or ()))
        except BROKEN:
            await self._renew(producer)
            raise
        return asyncio.ensure_future(self._delivered(producer, delivery))

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Any:  # noqa: ANN401 - aiokafka's RecordMetadata
        return await (await self.send(topic, value, key=key, headers=headers))

    def _current(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise ProducerClosed
        return self._producer

    async def _delivered(self, producer: AIOKafkaProducer, delivery: Awaitable[Any]) -> Any:  # noqa: ANN401
        try:
            return await delivery
        except BROKEN:
            await self._renew(producer)
            raise

    async def _renew(self, broken: AIOKafkaProducer) -> None:
        async with self._renewing:
            if self._stopped or self._producer is not broken:
                return  # renewed already by another send
            log.warning("%s: the broker refused the producer for good; renewing it", self._name)
            # If Kafka is away this raises, and the next send tries again.
            self._producer = await started(self._make())
        await stop_quietly(broken)


async def started(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """`producer`, started; closed again if it could not start (no unclosed client is left
    behind when the broker is away)."""
    try:
        await producer.start()
    except BaseException:
        await stop_quietly(producer)
        raise
    return producer


async def stop_quietly(producer: AIOKafkaProducer, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Stop a producer whose broker may be gone, giving up on what it still holds."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout=timeout)
