"""The monitor's last findings, kept in PostgreSQL for the people who act on them: the result
of each money check (reconcile, conservation) and the dead letters waiting on each `.dlq`
topic. The monitor writes them as it samples (services/monitor/watch.py); the operator console
reads them (services/gateway/console/). The gauges of services/metrics.py say the same to
Prometheus; this table is what a page can show without a Prometheus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from psycopg.types.json import Jsonb

from services.pg import PooledStore

TABLE = "monitor_results"
RECONCILE = "reconcile"
CONSERVATION = "conservation"
DEAD_LETTERS = "dead-letters:"
"""The prefix of a dead-letter topic's finding: `dead-letters:<topic>`."""


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: dict[str, Any]
    at: datetime


class MonitorResults(PooledStore):
    pool_name = "monitor-results"
    autocommit: ClassVar[bool] = True

    async def create_schema(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                " name text PRIMARY KEY,"
                " ok boolean NOT NULL,"
                " detail jsonb NOT NULL,"
                " at timestamptz NOT NULL DEFAULT now())"
            )

    async def record(self, name: str, *, ok: bool, detail: dict[str, Any]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO {TABLE} (name, ok, detail) VALUES (%s, %s, %s)"  # noqa: S608 - constant
                " ON CONFLICT (name) DO UPDATE"
                " SET ok = excluded.ok, detail = excluded.detail, at = now()",
                (name, ok, Jsonb(detail)),
            )

    async def findings(self) -> dict[str, Finding]:
        """Every last finding by name (none before the monitor's first sample)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
            exists = await cursor.fetchone()
            if exists is None or not exists[0]:
                return {}
            cursor = await conn.execute(f"SELECT name, ok, detail, at FROM {TABLE}")  # noqa: S608 - constant
            return {
                name: Finding(name, ok, detail, at)
                for name, ok, detail, at in await cursor.fetchall()
            }
