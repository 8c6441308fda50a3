"""The one way a service keeps an async PostgreSQL pool: opened in `open()` (or `async with`),
never on construction, closed in `close()`."""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Self

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from services.settings import Settings

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


async def _autocommit(conn: AsyncConnection[TupleRow]) -> None:
    await conn.set_autocommit(True)


class PooledStore:
    pool_name: ClassVar[str] = "store"
    autocommit: ClassVar[bool] = False
    """Connections in autocommit: for stores whose reads need no transaction."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 10.0) -> None:
        self._conninfo = settings.conninfo()
        self._pool_size = settings.pg_pool_size
        self._connect_timeout = connect_timeout
        self._opened: Pool | None = None

    async def open(self) -> None:
        if self._opened is not None:
            return
        pool: Pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            timeout=self._connect_timeout,
            configure=_autocommit if self.autocommit else None,
            name=self.pool_name,
        )
        await pool.open(wait=True, timeout=self._connect_timeout)
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
