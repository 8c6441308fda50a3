from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid

import psycopg

from services.logs import LOG_IDS, JsonLines, OutageNoise, bind, bound, current


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


def formatted(record_: logging.LogRecord) -> dict[str, str]:
    line: dict[str, str] = json.loads(JsonLines("engine-2").format(record_))
    return line


def info(message: str) -> logging.LogRecord:
    return logging.LogRecord("otc.engine", logging.INFO, __file__, 1, message, (), None)


def test_a_line_is_json_with_time_level_process_logger_and_message() -> None:
    line = formatted(info("engine: consuming"))

    assert line["level"] == "INFO"
    assert line["process"] == "engine-2"
    assert line["logger"] == "otc.engine"
    assert line["message"] == "engine: consuming"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert not set(LOG_IDS) & set(line)


def test_the_ids_bound_around_a_line_are_in_it_and_gone_after() -> None:
    order, command = uuid.uuid4(), uuid.uuid4()

    with bound(order_id=order, command_id=command, trace_id=None):
        inside = formatted(info("ConfirmQuote ok"))
        assert current("order_id") == str(order)
    after = formatted(info("next"))

    assert (inside["order_id"], inside["command_id"]) == (str(order), str(command))
    assert "trace_id" not in inside
    assert "order_id" not in after
    assert current("order_id") is None


def test_an_id_bound_in_a_task_stays_in_that_task() -> None:
    async def one_request() -> str | None:
        bind(request_id="req-12345678")
        return current("request_id")

    assert asyncio.run(one_request()) == "req-12345678"
    assert current("request_id") is None


def test_a_traceback_is_part_of_its_line() -> None:
    try:
        raise KeyError("bug")  # noqa: TRY301 - an exception with a traceback, for the record
    except KeyError as error:
        failed = logging.LogRecord(
            "otc.x", logging.ERROR, __file__, 1, "failed", (), (KeyError, error, None)
        )
        failed.exc_info = (type(error), error, error.__traceback__)

    line = formatted(failed)

    assert "KeyError: 'bug'" in line["exc"]
    assert "\n" not in JsonLines("x").format(failed)
