"""What the engine tells about itself: metrics (services/metrics.py) and one log line per
answered command with its ids. Called from a few places of services/engine/service.py, kept
apart from it so that the engine's flow reads without them."""

from __future__ import annotations

import logging
from typing import Any

from domain import commands as c
from services import metrics
from services.batches import header
from services.contracts import TRACE_ID, ReplyEnvelope
from services.logs import bound
from services.timings import Stages

log = logging.getLogger("otc.engine.commands")


def consumed(group: str, consumer: object, records: Any) -> None:  # noqa: ANN401
    metrics.consumer_lag(group, consumer, records)


def batch_saved(stages: Stages) -> None:
    metrics.batch_saved(
        stages.batch, load_ms=stages.load, outside_ms=stages.outside, save_ms=stages.save
    )


def answered(command: c.Command, reply: ReplyEnvelope, record: Any, queued_ms: float) -> None:  # noqa: ANN401
    """Count the answer by type and result, and log it under the command's ids."""
    kind = type(command).__name__
    result = "ok" if reply.ok or reply.error is None else reply.error.code.value
    metrics.command_answered(kind, result)
    metrics.stage_took("queue", queued_ms / 1000)
    with bound(
        command_id=command.command_id,
        order_id=command.order_id,
        trace_id=header(record, TRACE_ID),
    ):
        if reply.ok:
            status = (reply.order or {}).get("status")
            replayed = " (replayed)" if reply.replayed else ""
            log.info("%s ok: %s%s", kind, status, replayed)
        else:
            assert reply.error is not None  # noqa: S101 - a refusal carries its error
            log.info("%s refused %s: %s", kind, result, reply.error.message)


def trace_headers(record: Any) -> dict[str, str]:  # noqa: ANN401
    """The command's `trace_id`, for its reply."""
    trace = header(record, TRACE_ID)
    return {} if trace is None else {TRACE_ID: trace}
