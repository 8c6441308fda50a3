"""The one way a service keeps an async PostgreSQL pool: opened in `open()` (or `async with`),
never on construction, closed in `close()`.

Every pool checks a connection before handing it out (`check_connection`): after a PostgreSQL
restart the pooled connections are all dead, and without the check each one would fail one
request, possibly many minutes later; when an outage ends, `recheck_pools` replaces them all at
once. A lost connection is retried by the pool for
`pg_reconnect_timeout_seconds` only; the next request then starts a fresh attempt at once, so a
pool is back within seconds of the server, not after psycopg_pool's own backoff (which doubles
past a minute during a long outage).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from types import TracebackType
from typing import Any, ClassVar, Self

from eventsourcing.postgres import PostgresDatastore
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from services.settings import Settings

log = logging.getLogger(__name__)

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


_POOLS: weakref.WeakSet[AsyncConnectionPool[Any] | ConnectionPool[Any]] = weakref.WeakSet()


def register_pool(pool: AsyncConnectionPool[Any] | ConnectionPool[Any]) -> None:
    """Remember a pool of this process, for `recheck_pools` after an outage."""
    _POOLS.add(pool)


async def recheck_pools() -> None:
    """Check every idle connection of every pool of this process now, replacing the dead ones.

    After PostgreSQL comes back, the connections that sat idle through the outage are all dead;
    the pool would find out one request at a time, each paying a check and a backoff delay (a
    request could spend its whole timeout on them). `Vitals` calls this when an outage ends.
    """
    for pool in list(_POOLS):
        try:
            if isinstance(pool, AsyncConnectionPool):
                await pool.check()
            else:
                await asyncio.to_thread(pool.check)
        except Exception as error:  # noqa: BLE001 - a closed pool, or the server gone again
            log.debug("pool %s not rechecked: %s", pool.name, error)


def pool_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every async pool of this project is made with."""
    return {
        "check": AsyncConnectionPool.check_connection,
        "timeout": settings.pg_connect_timeout_seconds,
        "reconnect_timeout": settings.pg_reconnect_timeout_seconds,
    }


def harden_datastore(datastore: PostgresDatastore, settings: Settings) -> None:
    """The same reconnect bound for an eventsourcing datastore's (synchronous) pool; its
    pre-ping check and getconn timeout come from `Settings.postgres_env`."""
    datastore.pool.reconnect_timeout = settings.pg_reconnect_timeout_seconds
    register_pool(datastore.pool)


async def _autocommit(conn: AsyncConnection[TupleRow]) -> None:
    await conn.set_autocommit(True)


class PooledStore:
    pool_name: ClassVar[str] = "store"
    autocommit: ClassVar[bool] = False
    """Connections in autocommit: for stores whose reads need no transaction."""

    def __init__(self, settings: Settings) -> None:
        self._conninfo = settings.conninfo()
        self._pool_size = settings.pg_pool_size
        self._options = pool_options(settings)
        self._connect_timeout = settings.pg_connect_timeout_seconds
        self._opened: Pool | None = None

    async def open(self) -> None:
        if self._opened is not None:
            return
        pool: Pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            configure=_autocommit if self.autocommit else None,
            name=self.pool_name,
            **self._options,
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except BaseException:
            # A pool left open keeps reconnecting in tasks that outlive the failure and hold the
            # process up on its way out: close it.
            await pool.close()
            raise
        register_pool(pool)
        self._opened = pool

    async def close(self) -> None:
        if self._opened is not None:
            await self._opened.close()
            self._opened = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def create_schema(self) -> None:
        """Create the store's schema and tables if missing; safe to run concurrently."""
        raise NotImplementedError

    @property
    def _pool(self) -> Pool:
        if self._opened is None:
            raise RuntimeError(f"the {self.pool_name} store is not open")
        return self._opened
