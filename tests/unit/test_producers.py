"""The renewing producer, with fake aiokafka producers."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from services.producers import RenewingProducer


class FakeProducer:
    def __init__(self, failure: BaseException | None = None) -> None:
        self.failure = failure
        self.started = False
        self.stopped = False
        self.sent: list[bytes] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[str]:  # noqa: ANN401
        del topic
        delivery: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            delivery.set_exception(self.failure)
        else:
            self.sent.append(value)
            delivery.set_result("acked")
        return delivery


def maker(*producers: FakeProducer) -> tuple[list[FakeProducer], Any]:
    made: list[FakeProducer] = []
    queue = list(producers)

    def make() -> AIOKafkaProducer:
        made.append(queue.pop(0))
        return cast("AIOKafkaProducer", made[-1])

    return made, make


async def test_a_producer_the_broker_refused_for_good_is_replaced_by_a_fresh_one() -> None:
    made, make = maker(FakeProducer(OutOfOrderSequenceNumber()), FakeProducer())
    producer = RenewingProducer(make, name="test")
    await producer.start()

    with pytest.raises(OutOfOrderSequenceNumber):
        await producer.send_and_wait("t", b"first")
    assert await producer.send_and_wait("t", b"again") == "acked"

    assert len(made) == 2
    assert made[0].stopped
    assert made[1].sent == [b"again"]


async def test_a_passing_failure_keeps_the_producer() -> None:
    made, make = maker(FakeProducer(KafkaTimeoutError()), FakeProducer())
    producer = RenewingProducer(make, name="test")
    await producer.start()

    with pytest.raises(KafkaTimeoutError):
        await producer.send_and_wait("t", b"first")

    assert len(made) == 1
    assert not made[0].stopped
