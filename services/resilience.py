"""Riding out outages of PostgreSQL and Kafka.

Which errors mean "a dependency is away" (rather than a bug), a capped exponential backoff with
jitter for the retries, and `Outages`: one log line when an outage of a dependency starts and one
when it ends, however many calls fail in between (those are logged at DEBUG only).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
import psycopg_pool
from aiokafka.errors import KafkaError
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.persistence import PersistenceError

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    PersistenceError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    KafkaError,
    OSError,
)
"""What a consumer lets out of a batch so that the batch comes again: the platform failing, never
the message itself (a message's own failure is retried a bounded number of times, then
dead-lettered)."""


class Dependency(StrEnum):
    POSTGRES = "PostgreSQL"
    KAFKA = "Kafka"


_POSTGRES_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # psycopg_pool.PoolTimeout is one
    psycopg.InterfaceError,
    StoreOperationalError,
    StoreInterfaceError,
)
_KAFKA_ERRORS: tuple[type[BaseException], ...] = (KafkaError,)


class SubscriptionLostError(Exception):
    """A notification-log subscription ended because its connection failed (see `__cause__`)."""


def dependency_of(error: BaseException) -> Dependency | None:
    """The dependency whose absence `error` shows, or None when it is not an outage at all.

    Follows `__cause__` (a lost subscription wraps the database error); an exception group is an
    outage when every error in it is one.
    """
    if isinstance(error, BaseExceptionGroup):
        found = [dependency_of(inner) for inner in error.exceptions]
        return None if None in found else found[0]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _POSTGRES_ERRORS):
            return Dependency.POSTGRES
        if isinstance(current, _KAFKA_ERRORS):
            return Dependency.KAFKA
        current = current.__cause__
    return None


def is_outage(error: BaseException) -> bool:
    return dependency_of(error) is not None


def describe(error: BaseException) -> str:
    """One short line about an error: its class and the first line of its message (libpq and
    aiokafka messages name hosts and ports, never passwords)."""
    root: BaseException = error
    while True:
        if isinstance(root, BaseExceptionGroup) and root.exceptions:
            root = root.exceptions[0]
        elif isinstance(root, SubscriptionLostError) and root.__cause__ is not None:
            root = root.__cause__
        else:
            break
    name = type(root).__name__
    text = str(root).strip().splitlines()[0] if str(root).strip() else ""
    text = text.removeprefix(f"{name}: ")  # aiokafka's errors name their class themselves
    return f"{name}: {text[:200]}" if text else name


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: the n-th delay is drawn from
    [ceiling / 2, ceiling] where ceiling = min(maximum, initial x 2**n)."""

    initial: float = 0.2
    maximum: float = 5.0
    draw: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * 2.0**self.attempts)
        self.attempts += 1
        return ceiling / 2 + self.draw() * ceiling / 2

    @property
    def at_maximum(self) -> bool:
        return self.initial * 2.0 ** max(self.attempts - 1, 0) >= self.maximum

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class _Down:
    since_monotonic: float
    since_wall: float
    failures: int
    cause: str


class Outages:
    """What one process knows about its dependencies: up, or down since when and why.

    `failed` and `ok` may be called from any thread, as often as calls fail or succeed; only a
    change is logged, at WARNING: "PostgreSQL outage started" and "PostgreSQL outage ended after
    14.2 s (9 failed attempts)".
    """

    def __init__(
        self,
        process: str,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.process = process
        self.log = log
        self._clock = clock
        self._wall_clock = wall_clock
        self._down: dict[Dependency, _Down] = {}
        self._lock = threading.Lock()
        self.recoveries: dict[Dependency, int] = dict.fromkeys(Dependency, 0)
        """How many outages of each dependency ended so far."""

    def failed(self, error: BaseException, dependency: Dependency | None = None) -> None:
        found = dependency or dependency_of(error)
        if found is None:
            return
        with self._lock:
            down = self._down.get(found)
            if down is not None:
                down.failures += 1
                self.log.debug("%s: %s still unavailable: %s", self.process, found, describe(error))
                return
            self._down[found] = _Down(self._clock(), self._wall_clock(), 1, describe(error))
        self.log.warning(
            "%s: %s outage started: %s; retrying with backoff",
            self.process,
            found,
            describe(error),
        )

    def ok(self, *dependencies: Dependency) -> None:
        """These dependencies answered (all of them, when none is named)."""
        with self._lock:
            ended = [
                (dependency, self._down.pop(dependency))
                for dependency in dependencies or tuple(self._down)
                if dependency in self._down
            ]
            for dependency, _ in ended:
                self.recoveries[dependency] += 1
        for dependency, down in ended:
            self.log.warning(
                "%s: %s outage ended after %.1f s (%d failed attempts)",
                self.process,
                dependency,
                self._clock() - down.since_monotonic,
                down.failures,
            )

    def is_down(self, dependency: Dependency) -> bool:
        with self._lock:
            return dependency in self._down

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Each dependency that is down: since when (epoch seconds), how many failures, why."""
        with self._lock:
            return {
                str(dependency): {
                    "since": down.since_wall,
                    "failures": down.failures,
                    "cause": down.cause,
                }
                for dependency, down in self._down.items()
            }


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` or until `stop` is set; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def ride_out(
    session: Callable[[Callable[[], None]], Awaitable[None]],
    *,
    outages: Outages,
    backoff: Backoff,
    stop: asyncio.Event,
) -> None:
    """Run `session` until it returns (it does once `stop` is set). When it fails because a
    dependency is away, wait a backoff delay and run it again from the start: a session sets up
    its connections and resumes from its tracked position each time. Any other error is raised.

    The session calls the function it is given once it is set up and working: that ends the
    outage in the log and resets the backoff.
    """

    def working() -> None:
        backoff.reset()
        outages.ok(Dependency.POSTGRES)

    while not stop.is_set():
        try:
            await session(working)
        except Exception as error:
            if not is_outage(error):
                raise
            outages.failed(error)
            if await sleep_unless(stop, backoff.next_delay()):
                return
        else:
            return


async def pause_before_redelivery(error: BaseException, outages: Outages, backoff: Backoff) -> None:
    """A consumer's batch failed and will come again: note it (an outage is logged once, any
    other failure each time) and wait a backoff delay, so that an outage is not a busy loop."""
    if dependency_of(error) is None:
        outages.log.warning("%s: a batch failed and comes again", outages.process, exc_info=error)
    else:
        outages.failed(error)
    await asyncio.sleep(backoff.next_delay())


async def consume_batch(work: Awaitable[object], outages: Outages, backoff: Backoff) -> None:
    """A consumer's batch subscriber body: the batch's offsets are committed only if `work`
    returns; an infrastructure failure pauses (`pause_before_redelivery`) and raises, so the
    subscriber rewinds and the whole batch comes again, which idempotent handlers make harmless."""
    try:
        await work
    except INFRASTRUCTURE_ERRORS as error:
        await pause_before_redelivery(error, outages, backoff)
        raise
    backoff.reset()
    outages.ok()
