from __future__ import annotations

import logging

import psycopg
import psycopg_pool
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from eventsourcing.persistence import OperationalError as StoreOperationalError

from services.resilience import (
    Backoff,
    Dependency,
    Outages,
    SubscriptionLostError,
    dependency_of,
    describe,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_its_first_delay_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.2, maximum=5.0, draw=lambda: 1.0)

    delays = [backoff.next_delay() for _ in range(8)]

    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_backoff_jitter_keeps_each_delay_between_half_and_all_of_its_ceiling() -> None:
    low = Backoff(initial=1.0, maximum=8.0, draw=lambda: 0.0)
    high = Backoff(initial=1.0, maximum=8.0, draw=lambda: 0.999)

    assert [low.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert all(0.99 * c <= high.next_delay() <= c for c in (1.0, 2.0, 4.0, 8.0, 8.0))


def test_backoff_starts_over_after_a_reset() -> None:
    backoff = Backoff(initial=0.2, maximum=5.0, draw=lambda: 1.0)
    for _ in range(6):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() == 0.2


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        psycopg_pool.PoolTimeout("couldn't get a connection after 5.00 sec"),
        StoreOperationalError("connection refused"),
        psycopg.InterfaceError("the connection is closed"),
    ],
)
def test_database_errors_are_postgres_outages(error: Exception) -> None:
    assert dependency_of(error) is Dependency.POSTGRES


@pytest.mark.parametrize("error", [KafkaConnectionError("refused"), KafkaTimeoutError()])
def test_broker_errors_are_kafka_outages(error: Exception) -> None:
    assert dependency_of(error) is Dependency.KAFKA


def lost_subscription() -> SubscriptionLostError:
    lost = SubscriptionLostError("the notification subscription ended")
    lost.__cause__ = psycopg.OperationalError("consuming input failed")
    return lost


def test_a_lost_subscription_is_an_outage_of_the_database_that_ended_it() -> None:
    lost = lost_subscription()

    assert dependency_of(lost) is Dependency.POSTGRES
    assert describe(lost) == "OperationalError: consuming input failed"


def test_a_group_of_outage_errors_is_an_outage_and_one_bug_among_them_is_not() -> None:
    outages = ExceptionGroup("tasks", [psycopg.OperationalError("gone")])
    mixed = ExceptionGroup("tasks", [psycopg.OperationalError("gone"), KeyError("bug")])

    assert dependency_of(outages) is Dependency.POSTGRES
    assert dependency_of(mixed) is None


@pytest.mark.parametrize("error", [ValueError("bad"), KeyError("k"), RuntimeError("boom")])
def test_bugs_are_not_outages(error: Exception) -> None:
    assert dependency_of(error) is None


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outages = Outages("relay", logging.getLogger("test.outages"), clock=clock)
    caplog.set_level(logging.INFO, logger="test.outages")

    for _ in range(50):
        outages.failed(psycopg.OperationalError("connection refused"))
        clock.now += 0.5
    outages.ok()
    outages.ok()

    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        (
            "relay: PostgreSQL outage started: OperationalError: connection refused;"
            " retrying with backoff"
        ),
        "relay: PostgreSQL outage ended after 25.0 s (50 failed attempts)",
    ]
    assert outages.recoveries[Dependency.POSTGRES] == 1


def test_outages_of_postgres_and_kafka_are_tracked_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = Outages("engine", logging.getLogger("test.outages"))
    caplog.set_level(logging.INFO, logger="test.outages")

    outages.failed(psycopg.OperationalError("gone"))
    outages.failed(KafkaConnectionError("refused"))
    outages.ok(Dependency.KAFKA)

    assert outages.is_down(Dependency.POSTGRES)
    assert not outages.is_down(Dependency.KAFKA)
    assert set(outages.snapshot()) == {"PostgreSQL"}
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        "PostgreSQL outage started",
        "Kafka outage started",
        "Kafka outage ended after 0.0 s (1 failed attempts)",
    ]


def test_an_error_that_is_not_an_outage_is_not_recorded_as_one() -> None:
    outages = Outages("engine", logging.getLogger("test.outages"))

    outages.failed(ValueError("a bug"))

    assert outages.snapshot() == {}
