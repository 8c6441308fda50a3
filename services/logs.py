"""Logging for every process: one line per record, no secrets (settings mask them).

An outage of PostgreSQL or Kafka is reported by the process itself, once when it starts and once
when it ends (`services.resilience.Outages`). What the libraries would say about it meanwhile is
dropped: aiokafka logs every failed reconnect (thousands of lines a minute while a broker is
down), FastStream logs the traceback of every batch that failed for it.
"""

from __future__ import annotations

import logging
import os
import re

from services.resilience import is_outage

_KAFKA_CONNECTIVITY = re.compile(
    r"connect|not ready|NodeNotReady|coordinator|metadata|heartbeat|produce response"
    r"|fetch (messages|offsets)|could not send|cannot send|closed",
    re.IGNORECASE,
)


class OutageNoise(logging.Filter):
    """Drops library records about an outage that the process reports on its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        if record.name.startswith("aiokafka") and _KAFKA_CONNECTIVITY.search(record.getMessage()):
            return False
        error = record.exc_info[1] if record.exc_info else None
        return error is None or record.name.startswith("otc") or not is_outage(error)


def configure_logging() -> None:
    level = os.environ.get("OTC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for handler in logging.getLogger().handlers:
            handler.addFilter(OutageNoise())
        # FastStream's access logger has a handler of its own and does not propagate.
        logging.getLogger("faststream.access.kafka").addFilter(OutageNoise())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # every failed reconnect
