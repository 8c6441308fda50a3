"""Every Prometheus metric of the system, in one place: names `otc_...` with their unit last.

Each process serves the metrics it fills (and prometheus-client's `process_*` and `python_*`):
the gateway on its own port at `/metrics`, every other process of the local run on a metrics
port of its own (`OTC_METRICS_PORT`, given by the supervisor; see `serve_metrics`). The
supervisor writes where each one is to `.run/prometheus/targets.json`, which the scrape
configuration in `deploy/prometheus/` reads; `deploy/prometheus/alerts.yml` says what pages.

Each process exposes only its own families (`GATEWAY`, `ENGINE`, ...; `expose`), so that no
process shows another's figures as zeros. The hot paths (a request, a batch of commands, an
event, a movement) record through label children cached here (`Children`): one dictionary
lookup, no registry lookup or lock per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.registry import Collector

from services.settings import Settings

disable_created_metrics()  # type: ignore[no-untyped-call] # no `_created` series beside each counter

FAST_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Buckets for request, stage and call latencies."""

# --------------------------------------------------------------------------- the gateway

HTTP_REQUESTS = Counter(
    "otc_http_requests_total",
    "HTTP requests answered by the gateway, by route template (never the raw path), method "
    "and status code.",
    ["route", "method", "status"],
    registry=None,
)
HTTP_DURATION = Histogram(
    "otc_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"],
    buckets=FAST_SECONDS,
    registry=None,
)

# --------------------------------------------------------------------------- the engine

ENGINE_COMMANDS = Counter(
    "otc_engine_commands_total",
    "Commands the engine answered, by command type and result: `ok`, or the error code of a "
    "refusal (`NOT_CANCELLABLE`, `VALIDATION_ERROR`, ...). Replays of a stored answer count too.",
    ["type", "result"],
    registry=None,
)
ENGINE_BATCH_SIZE = Histogram(
    "otc_engine_batch_size_commands",
    "Commands decided and saved in one transaction (a part of a consumed batch).",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=None,
)
ENGINE_STAGE = Histogram(
    "otc_engine_stage_duration_seconds",
    "Where the engine's time goes (services/timings.py). Per saved batch: `load` (orders and "
    "idempotency keys), `outside` (provider, chain and resource lookups), `save` (decide and "
    "save in one transaction). Per command: `queue` (from the record's timestamp to the start "
    "of its batch). Per reply: `reply` (handed to the producer until the broker acknowledged).",
    ["stage"],
    buckets=FAST_SECONDS,
    registry=None,
)

# --------------------------------------------------------------------------- consumers

CONSUMER_LAG = Gauge(
    "otc_consumer_lag_messages",
    "Messages after the last one a consumer handled, per partition, as the consumer sees it "
    "(the partition's high watermark from its latest fetch, minus the next offset to handle); "
    "set by each batch. The monitor's otc_consumer_group_lag_messages is the same seen from "
    "outside, by committed offsets.",
    ["group", "topic", "partition"],
    registry=None,
)
CONSUMER_GROUP_LAG = Gauge(
    "otc_consumer_group_lag_messages",
    "Messages on a group's topic after its committed offsets (from the start of the log for a "
    "partition it never committed); measured by the monitor, so it grows when a consumer is "
    "stuck or down.",
    ["group"],
    registry=None,
)

# --------------------------------------------------------------------------- store followers

RELAY_EVENTS = Counter(
    "otc_relay_events_total",
    "Order events the relay published and the broker acknowledged, by event type.",
    ["type"],
    registry=None,
)
RELAY_PUBLISH = Histogram(
    "otc_relay_publish_duration_seconds",
    "Time to publish one batch of the notification log, acknowledged, and record the position.",
    buckets=FAST_SECONDS,
    registry=None,
)
PROJECTED_EVENTS = Counter(
    "otc_projector_events_total",
    "Order events the projector applied to the order_list read model, by event type.",
    ["type"],
    registry=None,
)
PROJECTOR_APPLY = Histogram(
    "otc_projector_apply_duration_seconds",
    "Time to apply one page of order events to order_list (read, fold, write, track) in its "
    "transaction.",
    buckets=FAST_SECONDS,
    registry=None,
)
STORE_LAG_EVENTS = Gauge(
    "otc_event_store_lag_events",
    "Notifications in the event store after a follower's position (`relay`: published to "
    "Kafka; `projector`: applied to the order_list read model). Measured by the monitor.",
    ["follower"],
    registry=None,
)
STORE_LAG_SECONDS = Gauge(
    "otc_event_store_lag_seconds",
    "Age of the oldest event a follower has not handled yet; 0 when it is caught up. Measured "
    "by the monitor.",
    ["follower"],
    registry=None,
)

# --------------------------------------------------------------------------- money and webhooks

MOVEMENTS = Counter(
    "otc_movements_total",
    "Movements a treasury worker tried, by party, leg and outcome: `done`, `refused` (the "
    "party's explicit refusal: nothing moved) or `unknown` (parked and retried).",
    ["party", "leg", "outcome"],
    registry=None,
)
MOVEMENT_DURATION = Histogram(
    "otc_movement_duration_seconds",
    "Time to move one leg and learn its outcome (reading it back included), by party.",
    ["party"],
    buckets=FAST_SECONDS,
    registry=None,
)
WEBHOOK_DELIVERIES = Counter(
    "otc_webhook_deliveries_total",
    "Webhook delivery attempts by result: `delivered` (2xx), `retrying` (failed, tried again "
    "later) or `failed` (given up: the endpoint is disabled).",
    ["result"],
    registry=None,
)
WEBHOOK_ATTEMPT = Histogram(
    "otc_webhook_attempt_duration_seconds",
    "Time of one delivery attempt, from signing to the receiver's answer (or its absence).",
    buckets=FAST_SECONDS,
    registry=None,
)
EXPIRIES_SENT = Counter(
    "otc_sweeper_expiries_sent_total",
    "ExpireQuote commands the sweeper sent for quotes past their time.",
    registry=None,
)

# --------------------------------------------------------------------------- operations

DEPENDENCY_UP = Gauge(
    "otc_dependency_up",
    "Whether this process's last probe of a dependency (`postgresql`, `kafka`) succeeded.",
    ["dependency"],
    registry=None,
)
DLQ_MESSAGES = Gauge(
    "otc_dlq_messages",
    "Dead letters not replayed yet (after the offsets `otc dlq replay` recorded), per "
    "dead-letter topic. Measured by the monitor.",
    ["topic"],
    registry=None,
)
CHECK_OK = Gauge(
    "otc_check_ok",
    "Result of the monitor's last money check (`reconcile`, `conservation`, as `otc check`): "
    "1 holds, 0 fails. Not set until a check could run.",
    ["check"],
    registry=None,
)
CHECK_MISMATCHES = Gauge(
    "otc_check_mismatches",
    "Mismatches the last reconciliation found (movements booked that the orders' events do "
    "not imply, or implied and not booked).",
    registry=None,
)
CHECK_LAST_RUN = Gauge(
    "otc_check_last_run_timestamp_seconds",
    "When a check last ran to the end (Unix time), whatever it found.",
    ["check"],
    registry=None,
)
CHECK_ERRORS = Counter(
    "otc_check_errors_total",
    "Checks and samples of the monitor that could not run (a ledger, the store or Kafka away).",
    ["check"],
    registry=None,
)
SUPERVISOR_RESTARTS = Counter(
    "otc_supervisor_restarts_total",
    "Restarts the supervisor made of a process (after it exited or hung).",
    ["process"],
    registry=None,
)
SUPERVISOR_UP = Gauge(
    "otc_supervisor_process_up",
    "Whether the supervisor's child runs (1) or is waiting to be restarted (0).",
    ["process"],
    registry=None,
)


GATEWAY: tuple[Collector, ...] = (HTTP_REQUESTS, HTTP_DURATION, DEPENDENCY_UP)
ENGINE: tuple[Collector, ...] = (
    ENGINE_COMMANDS,
    ENGINE_BATCH_SIZE,
    ENGINE_STAGE,
    CONSUMER_LAG,
    DEPENDENCY_UP,
)
RELAY: tuple[Collector, ...] = (RELAY_EVENTS, RELAY_PUBLISH, DEPENDENCY_UP)
PROJECTOR: tuple[Collector, ...] = (
    PROJECTED_EVENTS,
    PROJECTOR_APPLY,
    DEPENDENCY_UP,
)
SWEEPER: tuple[Collector, ...] = (EXPIRIES_SENT, DEPENDENCY_UP)
WORKER: tuple[Collector, ...] = (MOVEMENTS, MOVEMENT_DURATION, CONSUMER_LAG, DEPENDENCY_UP)
WEBHOOKS: tuple[Collector, ...] = (
    WEBHOOK_DELIVERIES,
    WEBHOOK_ATTEMPT,
    CONSUMER_LAG,
    DEPENDENCY_UP,
)
MONITOR: tuple[Collector, ...] = (
    STORE_LAG_EVENTS,
    STORE_LAG_SECONDS,
    CONSUMER_GROUP_LAG,
    DLQ_MESSAGES,
    CHECK_OK,
    CHECK_MISMATCHES,
    CHECK_LAST_RUN,
    CHECK_ERRORS,
    DEPENDENCY_UP,
)
SUPERVISOR: tuple[Collector, ...] = (SUPERVISOR_RESTARTS, SUPERVISOR_UP)
"""The families each process exposes."""

_exposed: set[int] = set()


def expose(families: tuple[Collector, ...]) -> None:
    """Put these families in this process's registry (once each, however often asked)."""
    for family in families:
        if id(family) not in _exposed:
            REGISTRY.register(family)
            _exposed.add(id(family))


class Children:
    """Label children of one metric, made once per label values and kept: the hot paths call
    `get` instead of `metric.labels(...)`, which takes the metric's lock every time."""

    def __init__(self, metric: Any) -> None:  # noqa: ANN401 - any prometheus-client metric
        self._labels: Callable[..., Any] = metric.labels
        self._made: dict[tuple[str, ...], Any] = {}

    def get(self, *values: str) -> Any:  # noqa: ANN401 - the metric's child
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self._labels(*values)
        return child


_commands = Children(ENGINE_COMMANDS)
_stages = Children(ENGINE_STAGE)
_lags = Children(CONSUMER_LAG)
_movements = Children(MOVEMENTS)
_movement_time = Children(MOVEMENT_DURATION)
_deliveries = Children(WEBHOOK_DELIVERIES)
_relayed = Children(RELAY_EVENTS)


def command_answered(command_type: str, result: str) -> None:
    _commands.get(command_type, result).inc()


def stage_took(stage: str, seconds: float) -> None:
    _stages.get(stage).observe(max(seconds, 0.0))


def batch_saved(size: int, *, load_ms: float, outside_ms: float, save_ms: float) -> None:
    ENGINE_BATCH_SIZE.observe(size)
    stage_took("load", load_ms / 1000)
    stage_took("outside", outside_ms / 1000)
    stage_took("save", save_ms / 1000)


def consumer_lag(group: str, consumer: object, records: Sequence[Any]) -> None:
    """The lag of each partition of a batch just handled: the partition's high watermark (as
    of the consumer's latest fetch) minus the offset after the batch's last record there. A
    stand-in consumer without `highwater` (FastStream's test broker) records nothing."""
    highwater = getattr(consumer, "highwater", None)
    if highwater is None:
        return
    latest: dict[Any, Any] = {}
    for record in records:
        key = (record.topic, record.partition)
        if key not in latest or record.offset > latest[key].offset:
            latest[key] = record
    for (topic, partition), record in latest.items():
        mark = highwater(TopicPartition(topic, partition))
        if isinstance(mark, int):
            _lags.get(group, topic, str(partition)).set(max(0, mark - record.offset - 1))


def movement_tried(party: str, leg: str, outcome: str, seconds: float) -> None:
    _movements.get(party, leg, outcome).inc()
    _movement_time.get(party).observe(seconds)


def webhook_attempted(result: str, seconds: float) -> None:
    _deliveries.get(result).inc()
    WEBHOOK_ATTEMPT.observe(seconds)


def event_relayed(event_type: str) -> None:
    _relayed.get(event_type).inc()


def dependency_probed(dependency: str, *, up: bool) -> None:
    DEPENDENCY_UP.labels(dependency.lower()).set(1 if up else 0)


def serve_metrics(settings: Settings, families: tuple[Collector, ...]) -> None:
    """Expose `families` and serve this process's metrics on `OTC_METRICS_PORT` (in a thread
    of its own), if set."""
    expose(families)
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
