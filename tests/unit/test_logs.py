from __future__ import annotations

import logging

import psycopg

from services.logs import OutageNoise


def record(name: str, message: str, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), exc_info)


def test_aiokafka_reconnect_chatter_is_dropped() -> None:
    noise = OutageNoise()

    assert not noise.filter(
        record("aiokafka", "Unable connect to node with id 1: [Errno 111] Connect call failed")
    )
    assert not noise.filter(record("aiokafka", "Unable to update metadata from [1]"))
    assert not noise.filter(
        record("aiokafka.consumer.group_coordinator", "Heartbeat session expired")
    )


def test_a_library_traceback_of_an_outage_is_dropped_and_of_a_bug_kept() -> None:
    noise = OutageNoise()
    outage = psycopg.OperationalError("consuming input failed")

    assert not noise.filter(record("faststream.access.kafka", "batch failed", outage))
    assert noise.filter(record("faststream.access.kafka", "batch failed", KeyError("bug")))


def test_the_processes_own_records_and_other_library_records_are_kept() -> None:
    noise = OutageNoise()
    outage = psycopg.OperationalError("consuming input failed")

    assert noise.filter(record("otc.relay", "relay: PostgreSQL outage started", outage))
    assert noise.filter(record("aiokafka", "Topic otc.commands is not authorized"))
    assert noise.filter(record("uvicorn.error", "Started server process"))
