"""Where a sandbox keeps its state: its PostgreSQL connection pool and schema (`Database`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from services import advisory_locks
from services.pg import pool_options, register_pool
from services.resilience import Backoff, Dependency, Outages, is_outage
from services.settings import Settings

Connection = AsyncConnection[DictRow]


class Database:
    """A sandbox's connection pool (autocommit connections, dict rows) and its schema.

    Nothing connects until `open()`, which the app's lifespan calls; the schema is created
    idempotently under an advisory lock, so sandboxes started side by side do not race.
    """

    def __init__(self, settings: Settings, schema: str, ddl: Sequence[str]) -> None:
        self.settings = settings
        self.schema = schema
        self._ddl = ddl
        self._pool: AsyncConnectionPool[Connection] | None = None

    @property
    def pool(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise RuntimeError(f"the {self.schema} database is not open")
        return self._pool

    async def open(self, outages: Outages) -> None:
        """Open the pool and make the schema. While PostgreSQL is away (a sandbox restarted in
        the middle of an outage) try again after a backoff delay instead of failing to start;
        a failed try leaves no pool behind (its reconnecting tasks would keep the process from
        exiting)."""
        backoff = Backoff(self.settings.retry_initial_seconds, self.settings.retry_max_seconds)
        while True:
            try:
                await self._open_once()
            except Exception as error:
                await self.close()
                if not is_outage(error):
                    raise
                outages.failed(error)
                await asyncio.sleep(backoff.next_delay())
            else:
                outages.ok(Dependency.POSTGRES)
                return

    async def _open_once(self) -> None:
        self._pool = AsyncConnectionPool(
            self.settings.conninfo(),
            connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=self.settings.pg_pool_size,
            open=False,
            name=f"sandbox-{self.schema}",
            **pool_options(self.settings),
        )
        await self._pool.open(wait=True, timeout=self.settings.pg_connect_timeout_seconds)
        register_pool(self._pool)
        async with self.transaction() as conn:
            await conn.execute(advisory_locks.SANDBOX_SCHEMA, (self.schema,))
            for statement in self._ddl:
                await conn.execute(statement)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One connection in one transaction: committed on exit, rolled back on an exception."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """One autocommit connection: each statement is its own transaction."""
        async with self.pool.connection() as conn:
            yield conn
