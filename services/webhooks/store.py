"""Endpoints, events and deliveries: the port, and its PostgreSQL adapter (schema `webhooks`).

Exactly once per endpoint and event: a delivery's key is (endpoint, event), and recording one
again changes nothing, so a redelivered Kafka batch records nothing twice. An event's body is
written once, when it is first recorded, and never changed: every attempt and every replay of
its deliveries sends the same bytes under the same webhook-id.

Claiming is the ordering rule and the concurrency bound in one statement, under one advisory
lock (so several dispatchers never claim past the bounds together): a pending delivery is due
when its time has come, its lease (if any) has run out, its endpoint is enabled, no delivery of
an earlier version of the same order to the same endpoint is still unsettled (pending or
failed), and its endpoint has fewer than `per_endpoint` attempts leased. A claim takes a lease;
the outcome is recorded only under that lease, and a lease that runs out (the sender died)
makes the delivery due again: at least once, never lost.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from services import advisory_locks
from services.pg import PooledStore
from services.webhooks.errors import EndpointLimitError, IdempotencyConflictError
from services.webhooks.events import TEST_EVENT_TYPE
from services.webhooks.model import (
    Claim,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointChanges,
    NewEndpoint,
    Outcome,
    WebhookEvent,
)
from services.webhooks.schedule import Delivered, GiveUp, RetryAt

SCAN = 2000
"""Due deliveries looked at per claim, oldest first."""


class WebhookStore(ABC):
    @abstractmethod
    async def create_schema(self) -> None: ...

    # ------------------------------------------------------------------ endpoints

    @abstractmethod
    async def add_endpoint(
        self, new: NewEndpoint, now: datetime, limit: int
    ) -> tuple[Endpoint, bool]:
        """Add an endpoint (True: added); the same `new.id` again returns the first one when it
        came from the same request (`fingerprint`), and raises IdempotencyConflictError
        otherwise. EndpointLimitError past `limit` endpoints of the customer."""

    @abstractmethod
    async def endpoint(self, customer_id: UUID | None, endpoint_id: UUID) -> Endpoint | None:
        """The endpoint, if it is this customer's (any customer's for None)."""

    @abstractmethod
    async def endpoints(
        self, customer_id: UUID | None, *, page: int, limit: int
    ) -> tuple[list[Endpoint], int]:
        """A page of the customer's endpoints (everyone's for None), newest first; the total."""

    @abstractmethod
    async def update_endpoint(
        self, customer_id: UUID, endpoint_id: UUID, changes: EndpointChanges, now: datetime
    ) -> Endpoint | None:
        """Enabling clears why it was disabled; disabling records that the customer did."""

    @abstractmethod
    async def delete_endpoint(self, customer_id: UUID, endpoint_id: UUID) -> bool: ...

    @abstractmethod
    async def rotate_secret(
        self, customer_id: UUID, endpoint_id: UUID, sealed: bytes, now: datetime, grace: timedelta
    ) -> datetime | None:
        """Make `sealed` the signing secret; the secrets signing until now keep signing for
        `grace`. Returns when they stop (None: no such endpoint)."""

    @abstractmethod
    async def first_secret(self, endpoint_id: UUID, now: datetime) -> bytes | None:
        """The secret the endpoint was created with, while it still signs (for the replay of
        an idempotent create)."""

    # ------------------------------------------------------------------ deliveries

    @abstractmethod
    async def record(self, events: Sequence[WebhookEvent], now: datetime) -> int:
        """Record events and one pending delivery of each per enabled endpoint of its customer
        that receives its type, in one transaction; returns how many deliveries are new."""

    @abstractmethod
    async def add_test(self, endpoint_id: UUID, event: WebhookEvent, now: datetime) -> Delivery:
        """A test event and its one delivery, to this endpoint only."""

    @abstractmethod
    async def replay(
        self, customer_id: UUID, endpoint_id: UUID, since: datetime, until: datetime, now: datetime
    ) -> int:
        """Queue again every event of the endpoint's customer that occurred in [since, until)
        and the endpoint receives: its schedule starts afresh, with the same webhook-id and
        body. Returns how many deliveries are queued."""

    @abstractmethod
    async def deliveries(
        self, endpoint_id: UUID, *, page: int, limit: int
    ) -> tuple[builtins.list[Delivery], int]:
        """A page of the endpoint's deliveries, newest first; the total."""

    @abstractmethod
    async def claim(
        self, now: datetime, *, limit: int, per_endpoint: int, lease: timedelta
    ) -> builtins.list[Claim]:
        """Lease up to `limit` due deliveries (the module's docstring says which are due)."""

    @abstractmethod
    async def settle_many(
        self, settled: Sequence[tuple[Claim, Outcome]]
    ) -> builtins.set[tuple[UUID, UUID]]:
        """Record attempts' outcomes, each under its lease, in one transaction; returns the
        (endpoint, event) of those recorded (a lost lease records nothing)."""

    async def settle(self, claim: Claim, outcome: Outcome) -> bool:
        """Record one attempt's outcome under its lease; False when the lease was lost."""
        recorded = await self.settle_many([(claim, outcome)])
        return (claim.endpoint_id, claim.event_id) in recorded


_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS webhooks;
CREATE TABLE IF NOT EXISTS webhooks.endpoints (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    event_types text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    disabled_at timestamptz,
    last_success_at timestamptz,
    fingerprint text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS endpoints_by_customer
    ON webhooks.endpoints (customer_id, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS webhooks.endpoint_secrets (
    endpoint_id uuid NOT NULL REFERENCES webhooks.endpoints (id) ON DELETE CASCADE,
    serial integer NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (endpoint_id, serial)
);
CREATE TABLE IF NOT EXISTS webhooks.events (
    event_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    order_id uuid,
    version integer,
    type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    body bytea NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_customer ON webhooks.events (customer_id, occurred_at);
CREATE TABLE IF NOT EXISTS webhooks.deliveries (
    endpoint_id uuid NOT NULL REFERENCES webhooks.endpoints (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES webhooks.events (event_id),
    seq bigint GENERATED ALWAYS AS IDENTITY,
    event_type text NOT NULL,
    order_id uuid,
    version integer,
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT deliveries_status CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_status_code integer,
    last_error text,
    next_attempt_at timestamptz,
    lease_id uuid,
    lease_until timestamptz,
    created_at timestamptz NOT NULL,
    delivered_at timestamptz,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due
    ON webhooks.deliveries (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_unsettled_by_order
    ON webhooks.deliveries (endpoint_id, order_id, version) WHERE status <> 'succeeded';
CREATE INDEX IF NOT EXISTS deliveries_newest ON webhooks.deliveries (endpoint_id, seq DESC);
CREATE INDEX IF NOT EXISTS deliveries_leased
    ON webhooks.deliveries (lease_until) WHERE status = 'pending' AND lease_id IS NOT NULL;
"""

_ENDPOINT_COLUMNS = (
    "id, customer_id, url, description, event_types, enabled, created_at, updated_at,"
    " disabled_reason, disabled_at"
)
_DELIVERY_COLUMNS = (
    "d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.created_at, d.order_id,"
    " d.version, d.last_status_code, d.last_error, d.last_attempt_at, d.next_attempt_at,"
    " d.delivered_at"
)

_RECORD_EVENTS = """
INSERT INTO webhooks.events
    (event_id, customer_id, order_id, version, type, occurred_at, body, recorded_at)
SELECT event_id, customer_id, order_id, version, type, occurred_at, body, %(now)s
FROM unnest(%(ids)s::uuid[], %(customers)s::uuid[], %(orders)s::uuid[], %(versions)s::int[],
            %(types)s::text[], %(times)s::timestamptz[], %(bodies)s::bytea[])
    AS incoming(event_id, customer_id, order_id, version, type, occurred_at, body)
ON CONFLICT (event_id) DO NOTHING
"""

_RECORD_DELIVERIES = """
INSERT INTO webhooks.deliveries
    (endpoint_id, event_id, event_type, order_id, version, next_attempt_at, created_at)
SELECT e.id, ev.event_id, ev.type, ev.order_id, ev.version, %(now)s, %(now)s
FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS incoming(event_id, n)
JOIN webhooks.events AS ev USING (event_id)
JOIN webhooks.endpoints AS e ON e.customer_id = ev.customer_id AND e.enabled
    AND (cardinality(e.event_types) = 0 OR ev.type = ANY (e.event_types))
ORDER BY incoming.n, e.id
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""

_CLAIM = f"""
WITH leased AS (
    SELECT endpoint_id, count(*) AS n FROM webhooks.deliveries
    WHERE status = 'pending' AND lease_id IS NOT NULL AND lease_until > %(now)s
    GROUP BY endpoint_id
), due AS (
    SELECT d.endpoint_id, d.event_id, d.next_attempt_at, d.seq
    FROM webhooks.deliveries AS d
    JOIN webhooks.endpoints AS e ON e.id = d.endpoint_id AND e.enabled
    WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s
        AND (d.lease_until IS NULL OR d.lease_until <= %(now)s)
        AND (d.order_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM webhooks.deliveries AS earlier
            WHERE earlier.endpoint_id = d.endpoint_id AND earlier.order_id = d.order_id
                AND earlier.version < d.version AND earlier.status <> 'succeeded'))
    ORDER BY d.next_attempt_at, d.seq
    LIMIT {SCAN}
), ranked AS (
    SELECT due.*, row_number() OVER (
        PARTITION BY due.endpoint_id ORDER BY due.next_attempt_at, due.seq) AS rank
    FROM due
), chosen AS (
    SELECT ranked.endpoint_id, ranked.event_id
    FROM ranked LEFT JOIN leased USING (endpoint_id)
    WHERE ranked.rank <= %(per_endpoint)s - coalesce(leased.n, 0)
    ORDER BY ranked.next_attempt_at, ranked.seq
    LIMIT %(limit)s
)
UPDATE webhooks.deliveries AS d SET lease_id = %(lease)s, lease_until = %(until)s
FROM chosen, webhooks.endpoints AS e, webhooks.events AS ev
WHERE d.endpoint_id = chosen.endpoint_id AND d.event_id = chosen.event_id
    AND e.id = d.endpoint_id AND ev.event_id = d.event_id
RETURNING d.endpoint_id, d.event_id, e.url, ev.body, d.attempts, d.event_type, d.order_id,
    d.version, d.first_attempt_at,
    ARRAY(SELECT s.sealed FROM webhooks.endpoint_secrets AS s
          WHERE s.endpoint_id = d.endpoint_id
              AND (s.expires_at IS NULL OR s.expires_at > %(now)s)
          ORDER BY s.serial DESC) AS secrets
"""  # noqa: S608 - SCAN is a constant

_SETTLE = """
UPDATE webhooks.deliveries AS d SET
    status = o.status, attempts = d.attempts + 1,
    first_attempt_at = coalesce(d.first_attempt_at, o.at), last_attempt_at = o.at,
    last_status_code = o.code, last_error = o.error, next_attempt_at = o.next,
    delivered_at = o.delivered, lease_id = NULL, lease_until = NULL
FROM unnest(%(endpoints)s::uuid[], %(events)s::uuid[], %(leases)s::uuid[], %(statuses)s::text[],
            %(ats)s::timestamptz[], %(codes)s::int[], %(errors)s::text[],
            %(nexts)s::timestamptz[], %(delivered)s::timestamptz[])
    AS o(endpoint_id, event_id, lease, status, at, code, error, next, delivered)
WHERE d.endpoint_id = o.endpoint_id AND d.event_id = o.event_id AND d.lease_id = o.lease
RETURNING d.endpoint_id, d.event_id
"""

_SUCCEEDED = """
UPDATE webhooks.endpoints AS e SET last_success_at = s.at
FROM unnest(%s::uuid[], %s::timestamptz[]) AS s(id, at)
WHERE e.id = s.id AND (e.last_success_at IS NULL OR e.last_success_at < s.at)
"""

_DISABLE = """
UPDATE webhooks.endpoints
SET enabled = false, disabled_reason = %(reason)s, disabled_at = %(at)s, updated_at = %(at)s
WHERE id = %(endpoint)s AND enabled
    AND (%(since)s::timestamptz IS NULL OR last_success_at IS NULL
         OR last_success_at < %(since)s)
"""

_REPLAY = """
INSERT INTO webhooks.deliveries
    (endpoint_id, event_id, event_type, order_id, version, next_attempt_at, created_at)
SELECT e.id, ev.event_id, ev.type, ev.order_id, ev.version, %(now)s, %(now)s
FROM webhooks.endpoints AS e
JOIN webhooks.events AS ev ON ev.customer_id = e.customer_id
WHERE e.id = %(endpoint)s AND e.customer_id = %(customer)s AND ev.type <> %(test)s
    AND ev.occurred_at >= %(since)s AND ev.occurred_at < %(until)s
    AND (cardinality(e.event_types) = 0 OR ev.type = ANY (e.event_types))
ORDER BY ev.occurred_at, ev.order_id, ev.version
ON CONFLICT (endpoint_id, event_id) DO UPDATE SET
    status = 'pending', attempts = 0, first_attempt_at = NULL,
    next_attempt_at = EXCLUDED.next_attempt_at
"""


class PostgresWebhookStore(PooledStore, WebhookStore):
    pool_name = "webhooks"

    async def create_schema(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.WEBHOOKS_SCHEMA,)
            )
            await conn.execute(_SCHEMA)

    # ------------------------------------------------------------------ endpoints

    async def add_endpoint(
        self, new: NewEndpoint, now: datetime, limit: int
    ) -> tuple[Endpoint, bool]:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(advisory_locks.WEBHOOK_ENDPOINTS_OF_CUSTOMER, (new.customer_id,))
            existing = await _one(
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
            count = await _one(
                conn,
                "SELECT count(*) AS n FROM webhooks.endpoints WHERE customer_id = %s",
                (new.customer_id,),
            )
            if count is not None and count["n"] >= limit:
                raise EndpointLimitError(f"a customer has at most {limit} webhook endpoints")
            row = await _one(
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
            row = await _one(
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
            rows = await _all(conn, query, params)
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
            row = await _one(conn, query, params)
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
            found = await _one(
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
            row = await _one(
                conn,
                "SELECT sealed FROM webhooks.endpoint_secrets WHERE endpoint_id = %s"
                " AND serial = 1 AND (expires_at IS NULL OR expires_at > %s)",
                (endpoint_id, now),
            )
        return None if row is None else bytes(row["sealed"])

    # ------------------------------------------------------------------ deliveries

    async def record(self, events: Sequence[WebhookEvent], now: datetime) -> int:
        if not events:
            return 0
        params = _event_params(events, now)
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_RECORD_EVENTS, params)
            cursor = await conn.execute(_RECORD_DELIVERIES, params)
            return cursor.rowcount

    async def add_test(self, endpoint_id: UUID, event: WebhookEvent, now: datetime) -> Delivery:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_RECORD_EVENTS, _event_params([event], now))
            await conn.execute(
                "INSERT INTO webhooks.deliveries"
                " (endpoint_id, event_id, event_type, next_attempt_at, created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (endpoint_id, event.event_id, event.type, now, now),
            )
            row = await _one(
                conn,
                f"SELECT {_DELIVERY_COLUMNS} FROM webhooks.deliveries AS d"  # noqa: S608 - constant text
                " WHERE d.endpoint_id = %s AND d.event_id = %s",
                (endpoint_id, event.event_id),
            )
        assert row is not None  # noqa: S101 - inserted just now
        return _delivery(row)

    async def replay(
        self, customer_id: UUID, endpoint_id: UUID, since: datetime, until: datetime, now: datetime
    ) -> int:
        params = {
            "endpoint": endpoint_id,
            "customer": customer_id,
            "since": since,
            "until": until,
            "now": now,
            "test": TEST_EVENT_TYPE,
        }
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_REPLAY, params)
            return cursor.rowcount

    async def deliveries(
        self, endpoint_id: UUID, *, page: int, limit: int
    ) -> tuple[builtins.list[Delivery], int]:
        query = (
            "SELECT matching.total, page.* FROM"  # noqa: S608 - constant text
            " (SELECT count(*) AS total FROM webhooks.deliveries WHERE endpoint_id = %(e)s)"
            f" AS matching LEFT JOIN LATERAL (SELECT {_DELIVERY_COLUMNS}"
            " FROM webhooks.deliveries AS d WHERE d.endpoint_id = %(e)s"
            " ORDER BY d.seq DESC LIMIT %(limit)s OFFSET %(skip)s) AS page ON true"
        )
        params = {"e": endpoint_id, "limit": limit, "skip": (page - 1) * limit}
        async with self._pool.connection() as conn:
            rows = await _all(conn, query, params)
        total = int(rows[0]["total"]) if rows else 0
        return [_delivery(row) for row in rows if row["event_id"] is not None], total

    async def claim(
        self, now: datetime, *, limit: int, per_endpoint: int, lease: timedelta
    ) -> builtins.list[Claim]:
        lease_id = uuid4()
        params = {
            "now": now,
            "limit": limit,
            "per_endpoint": per_endpoint,
            "lease": lease_id,
            "until": now + lease,
        }
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_locks.WEBHOOK_CLAIMS,))
            rows = await _all(conn, _CLAIM, params)
        return [
            Claim(
                endpoint_id=row["endpoint_id"],
                event_id=row["event_id"],
                lease=lease_id,
                url=row["url"],
                body=bytes(row["body"]),
                sealed_secrets=tuple(bytes(s) for s in row["secrets"]),
                attempts=row["attempts"],
                event_type=row["event_type"],
                order_id=row["order_id"],
                version=row["version"],
                first_attempt_at=row["first_attempt_at"],
            )
            for row in rows
        ]

    async def settle_many(
        self, settled: Sequence[tuple[Claim, Outcome]]
    ) -> builtins.set[tuple[UUID, UUID]]:
        if not settled:
            return set()
        params = {
            "endpoints": [c.endpoint_id for c, _ in settled],
            "events": [c.event_id for c, _ in settled],
            "leases": [c.lease for c, _ in settled],
            "statuses": [_status_after(o).value for _, o in settled],
            "ats": [o.at for _, o in settled],
            "codes": [o.status_code for _, o in settled],
            "errors": [None if o.error is None else o.error[:1000] for _, o in settled],
            "nexts": [
                o.decision.at if isinstance(o.decision, RetryAt) else None for _, o in settled
            ],
            "delivered": [o.at if isinstance(o.decision, Delivered) else None for _, o in settled],
        }
        async with self._pool.connection() as conn, conn.transaction():
            rows = await _all(conn, _SETTLE, params)
            recorded = {(row["endpoint_id"], row["event_id"]) for row in rows}
            kept = [(c, o) for c, o in settled if (c.endpoint_id, c.event_id) in recorded]
            succeeded: dict[UUID, datetime] = {}
            for claim, outcome in kept:
                if isinstance(outcome.decision, Delivered):
                    last = succeeded.get(claim.endpoint_id, outcome.at)
                    succeeded[claim.endpoint_id] = max(last, outcome.at)
            if succeeded:
                await conn.execute(_SUCCEEDED, (list(succeeded), list(succeeded.values())))
            for claim, outcome in kept:
                if outcome.disable is not None:
                    await conn.execute(
                        _DISABLE,
                        {
                            "reason": outcome.disable.reason[:1000],
                            "at": outcome.at,
                            "endpoint": claim.endpoint_id,
                            "since": outcome.disable.unless_success_since,
                        },
                    )
        return recorded


def _event_params(events: Sequence[WebhookEvent], now: datetime) -> dict[str, object]:
    return {
        "now": now,
        "ids": [e.event_id for e in events],
        "customers": [e.customer_id for e in events],
        "orders": [e.order_id for e in events],
        "versions": [e.version for e in events],
        "types": [e.type for e in events],
        "times": [e.occurred_at for e in events],
        "bodies": [e.body for e in events],
    }


def _status_after(outcome: Outcome) -> DeliveryStatus:
    match outcome.decision:
        case Delivered():
            return DeliveryStatus.SUCCEEDED
        case GiveUp():
            return DeliveryStatus.FAILED
        case RetryAt():
            return DeliveryStatus.PENDING


Params = Sequence[Any] | Mapping[str, Any]


async def _one(conn: AsyncConnection[Any], query: str, params: Params) -> DictRow | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()


async def _all(conn: AsyncConnection[Any], query: str, params: Params) -> list[DictRow]:
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


def _delivery(row: DictRow) -> Delivery:
    return Delivery(
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        order_id=row["order_id"],
        version=row["version"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        last_attempt_at=row["last_attempt_at"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
    )
