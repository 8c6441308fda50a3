"""The webhook endpoints of `PostgresWebhookStore` (services/webhooks/store.py): add, read,
list, change, delete, and their signing secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from services import advisory_locks
from services.pg import PooledStore
from services.webhooks.errors import EndpointLimitError, IdempotencyConflictError
from services.webhooks.model import (
    Endpoint,
    EndpointChanges,
    NewEndpoint,
)

_ENDPOINT_COLUMNS = (
    "id, customer_id, url, description, event_types, enabled, created_at, updated_at,"
    " disabled_reason, disabled_at"
)


class PgEndpoints(PooledStore):
    # ------------------------------------------------------------------ endpoints

    async def add_endpoint(
        self, new: NewEndpoint, now: datetime, limit: int
    ) -> tuple[Endpoint, bool]:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(advisory_locks.WEBHOOK_ENDPOINTS_OF_CUSTOMER, (new.customer_id,))
            existing = await one_row(
                conn,
                f"SELECT {_ENDPOINT_COLUMNS}, fingerprint FROM webhooks.endpoints WHERE id = %s",  # noqa: S608 - constant text
                (new.id,),
            )
            if existing is not None:
                same = (
                    existing["customer_id"] == new.customer_id
                    and new.fingerprint is not None
                    and existing["fingerprint"] == new.fingerprint
                )
                if not same:
                    raise IdempotencyConflictError(
                        "this Idempotency-Key was used with another request"
                    )
                return _endpoint(existing), False
            count = await one_row(
                conn,
                "SELECT count(*) AS n FROM webhooks.endpoints WHERE customer_id = %s",
                (new.customer_id,),
            )
            if count is not None and count["n"] >= limit:
                raise EndpointLimitError(f"a customer has at most {limit} webhook endpoints")
            row = await one_row(
                conn,
                "INSERT INTO webhooks.endpoints (id, customer_id, url, description, event_types,"  # noqa: S608 - constant text
                " fingerprint, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_ENDPOINT_COLUMNS}",
                (
                    new.id,
                    new.customer_id,
                    new.url,
                    new.description,
                    list(new.event_types),
                    new.fingerprint,
                    now,
                    now,
                ),
            )
            await conn.execute(
                "INSERT INTO webhooks.endpoint_secrets (endpoint_id, serial, sealed, created_at)"
                " VALUES (%s, 1, %s, %s)",
                (new.id, new.sealed_secret, now),
            )
        assert row is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        return _endpoint(row), True

    async def endpoint(self, customer_id: UUID | None, endpoint_id: UUID) -> Endpoint | None:
        async with self._pool.connection() as conn:
            row = await one_row(
                conn,
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints"  # noqa: S608 - constant text
                " WHERE id = %s AND (%s::uuid IS NULL OR customer_id = %s)",
                (endpoint_id, customer_id, customer_id),
            )
        return None if row is None else _endpoint(row)

    async def endpoints(
        self, customer_id: UUID | None, *, page: int, limit: int
    ) -> tuple[list[Endpoint], int]:
        where = "%(customer)s::uuid IS NULL OR customer_id = %(customer)s"
        query = (
            "SELECT matching.total, page.* FROM"  # noqa: S608 - constant text
            f" (SELECT count(*) AS total FROM webhooks.endpoints WHERE {where}) AS matching"
            f" LEFT JOIN LATERAL (SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints"
            f" WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(skip)s)"
            " AS page ON true"
        )
        params = {"customer": customer_id, "limit": limit, "skip": (page - 1) * limit}
        async with self._pool.connection() as conn:
            rows = await all_rows(conn, query, params)
        total = int(rows[0]["total"]) if rows else 0
        return [_endpoint(row) for row in rows if row["id"] is not None], total

    async def update_endpoint(
        self, customer_id: UUID, endpoint_id: UUID, changes: EndpointChanges, now: datetime
    ) -> Endpoint | None:
        enabling = {
            None: "",
            True: ", enabled = true, disabled_reason = NULL, disabled_at = NULL",
            False: ", enabled = false, disabled_reason = 'disabled by the customer',"
            " disabled_at = %(now)s",
        }[changes.enabled]
        query = (
            "UPDATE webhooks.endpoints SET updated_at = %(now)s,"  # noqa: S608 - constant text
            " url = coalesce(%(url)s, url), description = coalesce(%(description)s, description),"
            " event_types = coalesce(%(types)s, event_types)"
            f"{enabling} WHERE id = %(id)s AND customer_id = %(customer)s"
            f" RETURNING {_ENDPOINT_COLUMNS}"
        )
        params = {
            "now": now,
            "url": changes.url,
            "description": changes.description,
            "types": None if changes.event_types is None else list(changes.event_types),
            "id": endpoint_id,
            "customer": customer_id,
        }
        async with self._pool.connection() as conn, conn.transaction():
            row = await one_row(conn, query, params)
        return None if row is None else _endpoint(row)

    async def delete_endpoint(self, customer_id: UUID, endpoint_id: UUID) -> bool:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "DELETE FROM webhooks.endpoints WHERE id = %s AND customer_id = %s",
                (endpoint_id, customer_id),
            )
            return cursor.rowcount > 0

    async def rotate_secret(
        self, customer_id: UUID, endpoint_id: UUID, sealed: bytes, now: datetime, grace: timedelta
    ) -> datetime | None:
        async with self._pool.connection() as conn, conn.transaction():
            found = await one_row(
                conn,
                "SELECT id FROM webhooks.endpoints WHERE id = %s AND customer_id = %s FOR UPDATE",
                (endpoint_id, customer_id),
            )
            if found is None:
                return None
            until = now + grace
            await conn.execute(
                "UPDATE webhooks.endpoint_secrets SET expires_at = %s"
                " WHERE endpoint_id = %s AND (expires_at IS NULL OR expires_at > %s)",
                (until, endpoint_id, until),
            )
            await conn.execute(
                "INSERT INTO webhooks.endpoint_secrets (endpoint_id, serial, sealed, created_at)"
                " SELECT %s, coalesce(max(serial), 0) + 1, %s, %s"
                " FROM webhooks.endpoint_secrets WHERE endpoint_id = %s",
                (endpoint_id, sealed, now, endpoint_id),
            )
            await conn.execute(
                "UPDATE webhooks.endpoints SET updated_at = %s WHERE id = %s", (now, endpoint_id)
            )
        return until

    async def first_secret(self, endpoint_id: UUID, now: datetime) -> bytes | None:
        async with self._pool.connection() as conn:
            row = await one_row(
                conn,
                "SELECT sealed FROM webhooks.endpoint_secrets WHERE endpoint_id = %s"
                " AND serial = 1 AND (expires_at IS NULL OR expires_at > %s)",
                (endpoint_id, now),
            )
        return None if row is None else bytes(row["sealed"])


Params = Sequence[Any] | Mapping[str, Any]


async def one_row(conn: AsyncConnection[Any], query: str, params: Params) -> DictRow | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()


async def all_rows(conn: AsyncConnection[Any], query: str, params: Params) -> list[DictRow]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


def _endpoint(row: DictRow) -> Endpoint:
    return Endpoint(
        id=row["id"],
        customer_id=row["customer_id"],
        url=row["url"],
        description=row["description"],
        event_types=tuple(row["event_types"]),
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
    )
