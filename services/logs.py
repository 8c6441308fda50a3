"""Logging for every process: one JSON object per line, no secrets (settings mask them).

Each line has `ts` (UTC, milliseconds), `level`, `process` (`engine`, `eur-treasury-2`, ...),
`logger` and `message`, and the ids of what the line is about when they are known:
`request_id` (the gateway's request, its `X-Request-Id`), `trace_id` (the `trace_id` Kafka
header, services/contracts.py), `command_id`, `order_id` and `event_id`. They come from
context variables set where they are known (`bound`, `bind`), so a line need not name them:
the gateway binds them per request, the engine per command, the relay per event and the
workers per event and movement. `otc logs ORDER_ID` gathers one order's lines.

An outage of PostgreSQL or Kafka is reported by the process itself, once when it starts and once
when it ends (`services.resilience.Outages`). What the libraries would say about it meanwhile is
dropped: aiokafka logs every failed reconnect (thousands of lines a minute while a broker is
down), FastStream logs the traceback of every batch that failed for it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from services.resilience import is_outage

LOG_IDS = ("request_id", "trace_id", "command_id", "order_id", "event_id")
"""The ids a line may carry, in the order they are written."""

_IDS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"otc_log_{name}", default=None) for name in LOG_IDS
}

_KAFKA_CONNECTIVITY = re.compile(
    r"connect|not ready|NodeNotReady|coordinator|metadata|heartbeat|produce response"
    r"|fetch (messages|offsets)|could not send|cannot send|closed",
    re.IGNORECASE,
)


def bind(**ids: object) -> None:
    """Set ids for the rest of the current context (an HTTP request, a task); None leaves one
    as it is."""
    for name, value in ids.items():
        if value is not None:
            _IDS[name].set(str(value))


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Set ids for the lines logged inside the block (None clears one), then restore them."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    for name, value in ids.items():
        var = _IDS[name]
        tokens.append((var, var.set(None if value is None else str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current(name: str) -> str | None:
    """The id bound now under `name` (one of LOG_IDS), if any."""
    return _IDS[name].get()


class OutageNoise(logging.Filter):
    """Drops library records about an outage that the process reports on its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        if record.name.startswith("aiokafka") and _KAFKA_CONNECTIVITY.search(record.getMessage()):
            return False
        error = record.exc_info[1] if record.exc_info else None
        return error is None or record.name.startswith("otc") or not is_outage(error)


class JsonLines(logging.Formatter):
    """A record as one line of JSON: the fields of the module's docstring, then `exc` (the
    traceback) when there is one."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, str] = {
            "ts": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in _IDS.items():
            value = var.get() or getattr(record, name, None)
            if value:
                line[name] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(process: str | None = None) -> None:
    """JSON lines on standard output for this process (named by `OTC_PROCESS_NAME`, which the
    supervisor sets, else `process`), for its own loggers and the libraries' alike."""
    level = os.environ.get("OTC_LOG_LEVEL", "INFO").upper()
    name = os.environ.get("OTC_PROCESS_NAME") or process or Path(sys.argv[0]).name
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines(name))
    handler.setLevel(level)
    if level != "DEBUG":
        handler.addFilter(OutageNoise())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # FastStream's loggers do not propagate and bring handlers of their own (coloured text):
    # give them this one. Its broker loggers, made later, keep a stdout handler they find.
    for library in ("faststream", "faststream.access.kafka"):
        logger = logging.getLogger(library)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.addHandler(handler)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # every failed reconnect
    _log_uncaught()


def _log_uncaught() -> None:
    """A crash's traceback as a JSON line too, not as the interpreter's text."""
    crash = logging.getLogger("otc.crash")

    def on_exception(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        crash.critical("uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, tb))

    def on_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            on_exception(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = on_exception
    threading.excepthook = on_thread
