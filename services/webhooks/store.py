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
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from services import advisory_locks
from services.webhooks.model import (
    Claim,
    Delivery,
    Endpoint,
    EndpointChanges,
    NewEndpoint,
    Outcome,
    WebhookEvent,
)
from services.webhooks.pg_deliveries import PgDeliveries
from services.webhooks.pg_endpoints import PgEndpoints


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


class PostgresWebhookStore(PgEndpoints, PgDeliveries, WebhookStore):
    """The PostgreSQL adapter: its endpoints (pg_endpoints.py) and deliveries (pg_deliveries.py)."""

    pool_name = "webhooks"

    async def create_schema(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (advisory_locks.WEBHOOKS_SCHEMA,)
            )
            await conn.execute(_SCHEMA)
