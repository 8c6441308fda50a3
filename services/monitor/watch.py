"""What the monitor samples, each into its gauges (services/metrics.py):

- every `OTC_MONITOR_INTERVAL_SECONDS`: how far the relay and the projector are behind the
  event store, in events and in seconds (the age of the oldest event each has not handled);
  each consumer group's lag by its committed offsets; the dead letters not replayed yet;
- every `OTC_MONITOR_CHECK_INTERVAL_SECONDS`: the money checks of `otc check` (reconcile and
  conservation), their result and when they last ran; the reconciliation keeps the orders'
  histories between checks and reads only the events since the last one.

Each dead-letter count and money check is also kept in PostgreSQL as the last finding
(services/monitor/results.py), for the operator console.

The measures are those of the gateway's `/ready` (services/gateway/readiness.py) and of
`otc check` (services/cli/check.py), taken from outside the processes they watch: a follower
or a consumer that is stuck or down is seen falling behind. A sample that cannot be taken (a
dependency away) leaves its gauges as they were and counts in otc_check_errors_total.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services import metrics
from services.cli.check import KeptHistories, conservation, reconcile_report
from services.dead_letters import summarise
from services.engine.event_store import Orders
from services.gateway.readiness import KafkaLags, StoreLags
from services.kafka_acls import REPLAY_GROUP
from services.monitor.results import CONSERVATION, DEAD_LETTERS, RECONCILE, MonitorResults
from services.resilience import Outages, is_outage, sleep_unless
from services.settings import Settings

log = logging.getLogger("otc.monitor")

KEPT_MISMATCHES = 50
"""How many of a failed reconciliation's mismatches the console is shown (`otc check` has all)."""


def oldest_unhandled_age(orders: Orders, lag: int, now: datetime) -> float:
    """Seconds since the oldest of the last `lag` notifications was stored (0 for none)."""
    head = orders.recorder.max_notification_id() or 0
    if lag <= 0 or head <= 0:
        return 0.0
    found = orders.recorder.select_notifications(start=max(head - lag + 1, 1), limit=1)
    if not found:
        return 0.0
    stored: datetime = getattr(orders.mapper.to_domain_event(found[0]), "timestamp", now)
    return max(0.0, (now - stored).total_seconds())


@dataclass
class Watch:
    settings: Settings
    orders: Orders
    store: StoreLags
    kafka: KafkaLags
    outages: Outages
    results: MonitorResults | None = None
    kept: KeptHistories = field(default_factory=KeptHistories)
    """The orders' histories, kept between checks: each check reads only what came since."""

    def groups(self) -> dict[str, str]:
        s = self.settings
        return {
            s.engine_group: s.commands_topic,
            s.eur_worker_group: s.events_topic,
            s.chain_worker_group: s.events_topic,
            s.webhook_group: s.events_topic,
        }

    def dead_letter_topics(self) -> list[str]:
        return [self.settings.dlq_topic, self.settings.events_dlq_topic]

    async def store_lags(self) -> None:
        lags = await self.store.lags()
        now = datetime.now(UTC)
        for follower, lag in lags.items():
            events = lag or 0
            age = await asyncio.to_thread(oldest_unhandled_age, self.orders, events, now)
            metrics.STORE_LAG_EVENTS.labels(follower).set(events)
            metrics.STORE_LAG_SECONDS.labels(follower).set(age)

    async def consumer_lags(self) -> None:
        for group, topic in self.groups().items():
            metrics.CONSUMER_GROUP_LAG.labels(group).set(await self.kafka.group_lag(group, topic))

    async def dead_letters(self) -> None:
        for topic in self.dead_letter_topics():
            waiting = await self.kafka.group_lag(f"{REPLAY_GROUP}.{topic}", topic)
            metrics.DLQ_MESSAGES.labels(topic).set(waiting)
            await self.keep(DEAD_LETTERS + topic, ok=waiting == 0, detail={"waiting": waiting})

    async def reconciliation(self) -> None:
        report = await reconcile_report(self.settings, self.kept)
        metrics.CHECK_OK.labels("reconcile").set(1 if report["reconciled"] else 0)
        metrics.CHECK_MISMATCHES.set(len(report["mismatches"]))
        metrics.CHECK_LAST_RUN.labels("reconcile").set(time.time())
        kept = {**report, "mismatches": report["mismatches"][:KEPT_MISMATCHES]}
        await self.keep(RECONCILE, ok=bool(report["reconciled"]), detail=kept)
        if not report["reconciled"]:
            log.error("monitor: reconciliation failed: %s", report["mismatches"][:10])

    async def conservation(self) -> None:
        report = await conservation(self.settings)
        metrics.CHECK_OK.labels("conservation").set(1 if report["conserved"] else 0)
        metrics.CHECK_LAST_RUN.labels("conservation").set(time.time())
        await self.keep(CONSERVATION, ok=bool(report["conserved"]), detail=report)
        if not report["conserved"]:
            log.error("monitor: money not conserved: %s", report)

    async def keep(self, name: str, *, ok: bool, detail: dict[str, Any]) -> None:
        """The finding for the operator console (services/monitor/results.py)."""
        if self.results is not None:
            await self.results.record(name, ok=ok, detail=detail)

    async def run(self, stop: asyncio.Event, ready: Callable[[], None]) -> None:
        """Sample until `stop`: the lags and dead letters often, the money checks less often."""
        samples = {
            "store_lag": self.store_lags,
            "consumer_lag": self.consumer_lags,
            "dead_letters": self.dead_letters,
        }
        checks = {"reconcile": self.reconciliation, "conservation": self.conservation}
        next_check = 0.0
        ready()
        while not stop.is_set():
            await run_each(samples, self.outages)
            if time.monotonic() >= next_check:
                await run_each(checks, self.outages)
                next_check = time.monotonic() + self.settings.monitor_check_interval_seconds
            if await sleep_unless(stop, self.settings.monitor_interval_seconds):
                return


async def run_each(samples: Mapping[str, Callable[[], Awaitable[None]]], outages: Outages) -> None:
    """Each sample in turn; one that fails is counted and skipped (an outage is logged once,
    when it starts, by `outages`; anything else each time)."""
    for name, sample in samples.items():
        try:
            await sample()
        except Exception as error:  # noqa: BLE001 - a sample that cannot be taken is skipped
            metrics.CHECK_ERRORS.labels(name).inc()
            if is_outage(error):
                outages.failed(error)
            else:
                log.warning("monitor: %s not sampled: %s", name, summarise(error))
