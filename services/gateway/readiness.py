"""What `GET /ready` reports: whether PostgreSQL and Kafka answer, and how far behind the
system's followers are.

- relay lag: notifications in the event store after the relay's recorded position;
- projector lag: notifications after the `order_list` view's tracked position;
- consumer lag of each group (engine, eur-treasury, usdc-chain): messages on its topic after
  the group's committed offsets (from the start of the log for a partition it never committed).

Ready means every dependency answers and every lag is within its limit (settings). Each check has
its own time limit, so a dependency that hangs makes the answer "not ready", never a slow one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from projections.order_list.view import ORDER_LIST_TABLE
from services import kafka
from services.pg import PooledStore
from services.relay.relay import RELAY_NAME
from services.resilience import describe
from services.settings import Settings

log = logging.getLogger(__name__)

APPLICATION = "Orders"
EVENTS_TABLE = "orders_events"
ORDER_LIST_TRACKING_TABLE = f"{ORDER_LIST_TABLE}_tracking"


@dataclass
class Report:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    lags: dict[str, int | None] = field(default_factory=dict)


class StoreLags(PooledStore):
    """The relay's and the projector's lag, from the event store's own tables."""

    pool_name = "readiness"
    autocommit: ClassVar[bool] = True

    async def create_schema(self) -> None:
        """Nothing of its own: it reads the tables of the event store, relay and projector."""

    async def ping(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1")

    async def lags(self) -> dict[str, int | None]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL,"
                " to_regclass(%s) IS NOT NULL",
                (EVENTS_TABLE, "tail_positions", ORDER_LIST_TRACKING_TABLE),
            )
            row = await cursor.fetchone()
            assert row is not None  # noqa: S101 - a SELECT without FROM has one row
            has_events, has_positions, has_tracking = row
            if not has_events:
                return {"relay": 0, "projector": 0}
            head = await self._one(conn, f"SELECT max(notification_id) FROM {EVENTS_TABLE}")  # noqa: S608 - constant
            relay = (
                await self._one(
                    conn, "SELECT position FROM tail_positions WHERE name = %s", RELAY_NAME
                )
                if has_positions
                else None
            )
            projector = (
                await self._one(
                    conn,
                    f"SELECT max(notification_id) FROM {ORDER_LIST_TRACKING_TABLE}"  # noqa: S608 - constant
                    " WHERE application_name = %s",
                    APPLICATION,
                )
                if has_tracking
                else None
            )
        head = head or 0
        return {"relay": head - (relay or 0), "projector": head - (projector or 0)}

    @staticmethod
    async def _one(conn: Any, query: str, *params: object) -> int | None:  # noqa: ANN401 - a psycopg connection
        cursor = await conn.execute(query, params)
        row = await cursor.fetchone()
        return None if row is None or row[0] is None else int(row[0])


class KafkaLags:
    """The broker's answer and the consumer groups' lag, through clients of its own (made
    again after a failure: a client whose broker restarted may keep stale connections)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            await self.close()
            admin = kafka.admin(self._settings, client_id="otc-gateway-readiness")
            consumer = kafka.consumer(
                self._settings, client_id="otc-gateway-readiness", enable_auto_commit=False
            )
            self._admin, self._consumer = admin, consumer
            await admin.start()
            await consumer.start()
        return self._admin, self._consumer

    async def guarded(self, call: Callable[[], Awaitable[Any]]) -> Any:  # noqa: ANN401
        try:
            return await call()
        except BaseException:
            await self.close()
            raise

    async def ping(self) -> None:
        async def ping() -> None:
            admin, _ = await self._clients()
            await admin.describe_cluster()

        await self.guarded(ping)

    async def group_lag(self, group: str, topic: str) -> int:
        async def lag() -> int:
            admin, consumer = await self._clients()
            described = await admin.describe_topics([topic])
            partitions = [
                TopicPartition(topic, p["partition"])
                for found in described
                if found["topic"] == topic
                for p in found["partitions"]
            ]
            if not partitions:
                return 0
            committed = {
                tp: meta.offset
                for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                if tp.topic == topic and meta.offset >= 0
            }
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            return sum(max(0, ends[tp] - committed.get(tp, starts[tp])) for tp in partitions)

        lag_now: int = await self.guarded(lag)
        return lag_now

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()


class Readiness:
    def __init__(self, settings: Settings, store: StoreLags, kafka: KafkaLags) -> None:
        self.settings = settings
        self.store = store
        self.kafka = kafka
        self._kafka_turn = asyncio.Lock()

    async def report(self) -> Report:
        settings = self.settings
        groups = {
            settings.engine_group: settings.commands_topic,
            settings.eur_worker_group: settings.events_topic,
            settings.chain_worker_group: settings.events_topic,
        }
        database, store_lags, (kafka, group_lags) = await asyncio.gather(
            self._timed(self.store.ping()),
            self._timed(self.store.lags()),
            self._kafka(groups),
        )
        report = Report(ready=True)
        self._check(report, "database", database)
        self._check(report, "kafka", kafka)
        limits = {
            "relay": settings.ready_max_relay_lag,
            "projector": settings.ready_max_projector_lag,
        }
        for name, limit in limits.items():
            found = store_lags.get(name) if isinstance(store_lags, dict) else None
            self._lag(report, name, found, limit, store_lags)
        for group, found in zip(groups, group_lags, strict=True):
            value = found if isinstance(found, int) else None
            self._lag(report, group, value, settings.ready_max_consumer_lag, found)
        return report

    async def _kafka(self, groups: dict[str, str]) -> tuple[object, list[object]]:
        """The broker, then each group: one after the other, on the same clients (and one
        request at a time, whatever the number of /ready calls)."""
        async with self._kafka_turn:
            kafka = await self._timed(self.kafka.ping())
            if isinstance(kafka, Exception):
                return kafka, [kafka for _ in groups]
            lags = [await self._timed(self.kafka.group_lag(g, t)) for g, t in groups.items()]
        return kafka, lags

    async def _timed(self, call: Awaitable[Any]) -> Any:  # noqa: ANN401
        """The call's result, or the exception it raised (a hang is a TimeoutError)."""
        try:
            async with asyncio.timeout(self.settings.ready_check_timeout_seconds):
                return await call
        except Exception as error:  # noqa: BLE001 - reported, not raised
            return error

    @staticmethod
    def _check(report: Report, name: str, outcome: object) -> None:
        if isinstance(outcome, Exception):
            report.checks[name] = f"failing: {describe(outcome)}"
            report.ready = False
        else:
            report.checks[name] = "ok"

    @staticmethod
    def _lag(report: Report, name: str, value: int | None, limit: int, outcome: object) -> None:
        report.lags[name] = value
        if value is None:
            why = describe(outcome) if isinstance(outcome, Exception) else "unknown"
            report.checks[name] = f"failing: lag unknown ({why})"
            report.ready = False
        elif value > limit:
            report.checks[name] = f"failing: lag {value} over {limit}"
            report.ready = False
        else:
            report.checks[name] = "ok"
