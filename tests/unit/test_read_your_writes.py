"""The read-your-writes waiter without a database: who is woken by which position, what is read
and when, and that no wait outlives its bound."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.positions import PositionWatch

SOON = 0.5
"""Seconds within which a woken waiter must have returned (far above what it takes)."""


class Reads:
    """A position read from the database, counted; `hang` makes it never answer."""

    def __init__(self, position: int | None = None, *, hang: bool = False) -> None:
        self.position = position
        self.hang = hang
        self.count = 0

    async def __call__(self) -> int | None:
        self.count += 1
        if self.hang:
            await asyncio.Event().wait()
        return self.position


def live_watch(reached: int = 0) -> PositionWatch:
    watch = PositionWatch()
    watch.live = True
    watch.advance(reached)
    return watch


async def test_a_position_already_reached_returns_at_once_without_reading() -> None:
    watch, reads = live_watch(reached=7), Reads()

    assert await watch.caught_up(7, within=0, read=reads)
    assert reads.count == 0


async def test_a_waiter_is_woken_by_the_position_it_waits_for_and_not_before() -> None:
    watch, reads = live_watch(reached=1), Reads()
    waiter = asyncio.create_task(watch.caught_up(5, within=10, read=reads))
    await asyncio.sleep(0)

    watch.advance(4)
    await asyncio.sleep(0.01)
    early = waiter.done()
    watch.advance(6)

    assert not early
    assert await asyncio.wait_for(waiter, SOON)
    assert reads.count == 0  # a live listener: nothing is read, ever
    assert len(watch) == 0


async def test_one_position_wakes_every_waiter_it_covers_and_only_those() -> None:
    watch, reads = live_watch(), Reads()
    waiters = {p: asyncio.create_task(watch.caught_up(p, within=10, read=reads)) for p in (3, 1, 2)}
    later = asyncio.create_task(watch.caught_up(9, within=10, read=reads))
    await asyncio.sleep(0)

    watch.advance(3)

    assert await asyncio.wait_for(asyncio.gather(*waiters.values()), SOON) == [True] * 3
    assert not later.done()
    later.cancel()


async def test_a_waiter_not_reached_in_time_returns_false_and_is_forgotten() -> None:
    watch, reads = live_watch(reached=1), Reads()
    loop = asyncio.get_running_loop()
    started = loop.time()

    reached = await watch.caught_up(2, within=0.2, read=reads)

    assert not reached
    assert 0.2 <= loop.time() - started < 0.2 + SOON
    assert len(watch) == 0


async def test_a_lower_or_repeated_position_changes_nothing() -> None:
    watch = live_watch(reached=5)

    watch.advance(3)
    watch.advance(5)

    assert watch.reached == 5


async def test_without_a_listener_the_position_is_read_once_and_may_be_enough() -> None:
    watch, reads = PositionWatch(), Reads(position=8)

    assert await watch.caught_up(8, within=10, read=reads)
    assert reads.count == 1
    assert watch.reached == 8


async def test_without_a_listener_a_position_already_known_is_not_read_again() -> None:
    watch, reads = PositionWatch(), Reads(position=8)
    watch.advance(8)

    assert await watch.caught_up(6, within=10, read=reads)
    assert reads.count == 0


async def test_without_a_listener_a_waiter_reads_once_then_waits_for_news() -> None:
    watch, reads = PositionWatch(), Reads(position=2)
    waiter = asyncio.create_task(watch.caught_up(5, within=10, read=reads))
    await asyncio.sleep(0.05)
    waiting = not waiter.done()

    watch.advance(5)  # the listener is back, or another waiter read further

    assert waiting
    assert await asyncio.wait_for(waiter, SOON)
    assert reads.count == 1


@pytest.mark.parametrize("reads", [Reads(hang=True), Reads(position=None)], ids=["hangs", "none"])
async def test_without_a_listener_no_wait_outlives_its_bound(reads: Reads) -> None:
    watch = PositionWatch()
    loop = asyncio.get_running_loop()
    started = loop.time()

    reached = await watch.caught_up(5, within=0.2, read=reads)

    assert not reached
    assert loop.time() - started < 0.2 + SOON
    assert reads.count == 1


async def test_a_failed_read_is_only_a_wait_bounded_like_any() -> None:
    async def failing() -> int | None:
        raise OSError("server closed the connection")

    watch = PositionWatch()

    assert not await watch.caught_up(5, within=0.1, read=failing)
    assert watch.reached == 0
