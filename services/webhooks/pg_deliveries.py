"""The deliveries of `PostgresWebhookStore` (services/webhooks/store.py has the rules): events
recorded with a delivery per endpoint, test events, replays, the delivery log, claims and their
outcomes."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from psycopg.rows import DictRow

from services import advisory_locks
from services.pg import PooledStore
from services.webhooks.events import TEST_EVENT_TYPE
from services.webhooks.model import (
    Claim,
    Delivery,
    DeliveryStatus,
    Outcome,
    WebhookEvent,
)
from services.webhooks.pg_endpoints import all_rows, one_row
from services.webhooks.schedule import Delivered, GiveUp, RetryAt

SCAN = 2000
"""Due deliveries looked at per claim, oldest first."""

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


class PgDeliveries(PooledStore):
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
            row = await one_row(
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
            rows = await all_rows(conn, query, params)
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
            rows = await all_rows(conn, _CLAIM, params)
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
            rows = await all_rows(conn, _SETTLE, params)
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
