"""Offsets committed in order behind their batches' replies, so that a consumer can work on its
next batch while the previous one's replies are still on their way to the broker.

A consumer hands each batch it has processed to `InOrderCommits.after` with the deliveries of
its replies and returns at once. In the background, each batch's offsets are committed once its
replies are acknowledged and every earlier batch's were, so a committed offset still means
"saved and answered". When replies cannot be delivered (the broker is away), nothing later is
committed and the chain is broken: the consumer's next batch calls `rewind`, which seeks every
partition back to its earliest offset not committed, so all of it comes again (harmless: every
command is idempotent). `max_in_flight` bounds the batches waiting for their replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    earliest: dict[TopicPartition, int]
    latest: dict[TopicPartition, int]
    finished: asyncio.Task[bool]


def offset_range(
    records: Sequence[Any],
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """The earliest and the latest offset of `records` (aiokafka records) in each partition."""
    earliest: dict[TopicPartition, int] = {}
    latest: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        earliest[tp] = min(earliest.get(tp, record.offset), record.offset)
        latest[tp] = max(latest.get(tp, record.offset), record.offset)
    return earliest, latest


class InOrderCommits:
    def __init__(self, max_in_flight: int = 4) -> None:
        self.max_in_flight = max_in_flight
        self._pending: deque[_Pending] = deque()
        self._uncommitted: dict[TopicPartition, int] = {}
        """The earliest offset per partition of the batches that will not be committed."""
        self.broken: BaseException | None = None
        """Why the chain broke (replies not delivered); `rewind` mends it."""

    async def after(
        self, consumer: object, records: Sequence[Any], deliveries: Sequence[Awaitable[Any]]
    ) -> None:
        """Commit `records` once `deliveries` are acknowledged, after every earlier batch."""
        earliest, latest = offset_range(records)
        previous = self._pending[-1].finished if self._pending else None
        finished = asyncio.create_task(self._finish(consumer, previous, latest, deliveries))
        pending = _Pending(earliest, latest, finished)
        self._pending.append(pending)
        finished.add_done_callback(lambda _: self._settle(pending))
        while len(self._pending) > self.max_in_flight:
            await asyncio.wait([self._pending[0].finished])

    def _settle(self, pending: _Pending) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(pending)
        task = pending.finished
        if task.cancelled() or task.exception() is not None or not task.result():
            for tp, offset in pending.earliest.items():
                self._uncommitted[tp] = min(self._uncommitted.get(tp, offset), offset)

    async def _finish(
        self,
        consumer: object,
        previous: asyncio.Task[bool] | None,
        latest: dict[TopicPartition, int],
        deliveries: Sequence[Awaitable[Any]],
    ) -> bool:
        """Whether this batch and every earlier one were answered (and committed)."""
        try:
            await asyncio.gather(*deliveries)
        except Exception as error:  # noqa: BLE001 - whatever it was, the replies are not out
            log.warning("replies not delivered (%s): their batch will come again", error)
            self.broken = error
            return False
        if previous is not None and not await previous:
            return False
        if self.broken is not None:
            return False
        await commit(consumer, latest)
        return True

    async def rewind(self, consumer: object, records: Sequence[Any]) -> None:
        """Seek every partition back to its earliest offset not committed (of the batches in
        flight and of `records`, the batch at hand), once the batches in flight are done."""
        earliest, _ = offset_range(records)
        await self.drain()
        for tp, offset in self._uncommitted.items():
            earliest[tp] = min(earliest.get(tp, offset), offset)
        seek(consumer, earliest)
        self._uncommitted.clear()
        self.broken = None

    async def drain(self) -> None:
        """Wait for the batches in flight (on shutdown: their replies out, their offsets in)."""
        await asyncio.gather(*(p.finished for p in list(self._pending)), return_exceptions=True)


class Consumer(Protocol):
    """What of an aiokafka consumer this needs (FastStream's in-memory test broker hands its
    subscribers a stand-in without `assignment`: it has no offsets to keep)."""

    def assignment(self) -> set[TopicPartition]: ...

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...


def _real(consumer: object) -> Consumer | None:
    return cast("Consumer", consumer) if hasattr(consumer, "assignment") else None


async def commit(consumer: object, latest: dict[TopicPartition, int]) -> None:
    """Commit the offsets after `latest` of the partitions still assigned. A failed commit only
    means a redelivery later (a later commit covers it), so it is logged, not raised."""
    real = _real(consumer)
    if real is None:
        return
    mine = real.assignment()
    offsets = {tp: OffsetAndMetadata(o + 1, "") for tp, o in latest.items() if tp in mine}
    if not offsets:
        return
    try:
        await real.commit(offsets)
    except KafkaError as error:
        log.info("offsets not committed (%s): a later commit covers them", error)


def seek(consumer: object, earliest: dict[TopicPartition, int]) -> None:
    """Seek each still assigned partition back to `earliest` (what was fetched after is
    dropped: it comes again)."""
    real = _real(consumer)
    if real is None:
        return
    mine = real.assignment()
    for tp, offset in earliest.items():
        if tp in mine:
            real.seek(tp, offset)
