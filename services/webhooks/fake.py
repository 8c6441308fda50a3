"""An in-memory webhook store for unit tests, with the PostgreSQL store's rules (the same
contract tests run against both)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

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
from services.webhooks.store import WebhookStore


@dataclass
class _Secret:
    serial: int
    sealed: bytes
    expires_at: datetime | None = None

    def signs_at(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class _Row:
    delivery: Delivery
    seq: int
    first_attempt_at: datetime | None = None
    lease: UUID | None = None
    lease_until: datetime | None = None

    def leased(self, now: datetime) -> bool:
        return self.lease_until is not None and self.lease_until > now


class InMemoryWebhookStore(WebhookStore):
    def __init__(self) -> None:
        self.endpoints_by_id: dict[UUID, Endpoint] = {}
        self.fingerprints: dict[UUID, str | None] = {}
        self.secrets: dict[UUID, list[_Secret]] = {}
        self.last_success: dict[UUID, datetime] = {}
        self.events: dict[UUID, WebhookEvent] = {}
        self.rows: dict[tuple[UUID, UUID], _Row] = {}
        self._seq = 0

    async def create_schema(self) -> None:
        return None

    # ------------------------------------------------------------------ endpoints

    async def add_endpoint(
        self, new: NewEndpoint, now: datetime, limit: int
    ) -> tuple[Endpoint, bool]:
        existing = self.endpoints_by_id.get(new.id)
        if existing is not None:
            same = (
                existing.customer_id == new.customer_id
                and new.fingerprint is not None
                and self.fingerprints[new.id] == new.fingerprint
            )
            if not same:
                raise IdempotencyConflictError("this Idempotency-Key was used with another request")
            return existing, False
        owned = [e for e in self.endpoints_by_id.values() if e.customer_id == new.customer_id]
        if len(owned) >= limit:
            raise EndpointLimitError(f"a customer has at most {limit} webhook endpoints")
        endpoint = Endpoint(
            id=new.id,
            customer_id=new.customer_id,
            url=new.url,
            description=new.description,
            event_types=new.event_types,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        self.endpoints_by_id[new.id] = endpoint
        self.fingerprints[new.id] = new.fingerprint
        self.secrets[new.id] = [_Secret(1, new.sealed_secret)]
        return endpoint, True

    async def endpoint(self, customer_id: UUID | None, endpoint_id: UUID) -> Endpoint | None:
        found = self.endpoints_by_id.get(endpoint_id)
        if found is None or customer_id not in (None, found.customer_id):
            return None
        return found

    async def endpoints(
        self, customer_id: UUID | None, *, page: int, limit: int
    ) -> tuple[list[Endpoint], int]:
        mine = sorted(
            (e for e in self.endpoints_by_id.values() if customer_id in (None, e.customer_id)),
            key=lambda e: (e.created_at, e.id),
            reverse=True,
        )
        return mine[(page - 1) * limit : page * limit], len(mine)

    async def update_endpoint(
        self, customer_id: UUID, endpoint_id: UUID, changes: EndpointChanges, now: datetime
    ) -> Endpoint | None:
        found = await self.endpoint(customer_id, endpoint_id)
        if found is None:
            return None
        updated = replace(
            found,
            url=changes.url if changes.url is not None else found.url,
            description=changes.description
            if changes.description is not None
            else found.description,
            event_types=changes.event_types
            if changes.event_types is not None
            else found.event_types,
            updated_at=now,
        )
        if changes.enabled is True:
            updated = replace(updated, enabled=True, disabled_reason=None, disabled_at=None)
        elif changes.enabled is False:
            updated = replace(
                updated, enabled=False, disabled_reason="disabled by the customer", disabled_at=now
            )
        self.endpoints_by_id[endpoint_id] = updated
        return updated

    async def delete_endpoint(self, customer_id: UUID, endpoint_id: UUID) -> bool:
        if await self.endpoint(customer_id, endpoint_id) is None:
            return False
        del self.endpoints_by_id[endpoint_id]
        self.secrets.pop(endpoint_id, None)
        for key in [key for key in self.rows if key[0] == endpoint_id]:
            del self.rows[key]
        return True

    async def rotate_secret(
        self, customer_id: UUID, endpoint_id: UUID, sealed: bytes, now: datetime, grace: timedelta
    ) -> datetime | None:
        found = await self.endpoint(customer_id, endpoint_id)
        if found is None:
            return None
        until = now + grace
        secrets = self.secrets[endpoint_id]
        for secret in secrets:
            if secret.expires_at is None or secret.expires_at > until:
                secret.expires_at = until
        secrets.append(_Secret(max(s.serial for s in secrets) + 1, sealed))
        self.endpoints_by_id[endpoint_id] = replace(found, updated_at=now)
        return until

    async def first_secret(self, endpoint_id: UUID, now: datetime) -> bytes | None:
        first = next((s for s in self.secrets.get(endpoint_id, []) if s.serial == 1), None)
        return first.sealed if first is not None and first.signs_at(now) else None

    # ------------------------------------------------------------------ deliveries

    def _add_delivery(self, endpoint: Endpoint, event: WebhookEvent, now: datetime) -> bool:
        key = (endpoint.id, event.event_id)
        if key in self.rows:
            return False
        self._seq += 1
        self.rows[key] = _Row(
            Delivery(
                endpoint_id=endpoint.id,
                event_id=event.event_id,
                event_type=event.type,
                status=DeliveryStatus.PENDING,
                attempts=0,
                created_at=now,
                order_id=event.order_id,
                version=event.version,
                next_attempt_at=now,
            ),
            seq=self._seq,
        )
        return True

    async def record(self, events: Sequence[WebhookEvent], now: datetime) -> int:
        added = 0
        for event in events:
            self.events.setdefault(event.event_id, event)
            stored = self.events[event.event_id]
            for endpoint in sorted(self.endpoints_by_id.values(), key=lambda e: e.id):
                if (
                    endpoint.customer_id == stored.customer_id
                    and endpoint.enabled
                    and endpoint.receives(stored.type)
                ):
                    added += self._add_delivery(endpoint, stored, now)
        return added

    async def add_test(self, endpoint_id: UUID, event: WebhookEvent, now: datetime) -> Delivery:
        self.events.setdefault(event.event_id, event)
        self._add_delivery(self.endpoints_by_id[endpoint_id], event, now)
        return self.rows[endpoint_id, event.event_id].delivery

    async def replay(
        self, customer_id: UUID, endpoint_id: UUID, since: datetime, until: datetime, now: datetime
    ) -> int:
        endpoint = await self.endpoint(customer_id, endpoint_id)
        if endpoint is None:
            return 0
        window = sorted(
            (
                e
                for e in self.events.values()
                if e.customer_id == customer_id
                and e.type != TEST_EVENT_TYPE
                and since <= e.occurred_at < until
                and endpoint.receives(e.type)
            ),
            key=lambda e: (e.occurred_at, str(e.order_id), e.version or 0),
        )
        for event in window:
            if not self._add_delivery(endpoint, event, now):
                row = self.rows[endpoint_id, event.event_id]
                row.delivery = replace(
                    row.delivery, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now
                )
                row.first_attempt_at = None
        return len(window)

    async def deliveries(
        self, endpoint_id: UUID, *, page: int, limit: int
    ) -> tuple[builtins.list[Delivery], int]:
        mine = sorted(
            (row for (e, _), row in self.rows.items() if e == endpoint_id),
            key=lambda row: row.seq,
            reverse=True,
        )
        return [row.delivery for row in mine[(page - 1) * limit : page * limit]], len(mine)

    def _due(self, row: _Row, now: datetime) -> bool:
        delivery = row.delivery
        endpoint = self.endpoints_by_id.get(delivery.endpoint_id)
        if (
            endpoint is None
            or not endpoint.enabled
            or delivery.status is not DeliveryStatus.PENDING
            or delivery.next_attempt_at is None
            or delivery.next_attempt_at > now
            or row.leased(now)
        ):
            return False
        return delivery.order_id is None or not any(
            other.delivery.order_id == delivery.order_id
            and other.delivery.endpoint_id == delivery.endpoint_id
            and (other.delivery.version or 0) < (delivery.version or 0)
            and other.delivery.status is not DeliveryStatus.SUCCEEDED
            for other in self.rows.values()
        )

    async def claim(
        self, now: datetime, *, limit: int, per_endpoint: int, lease: timedelta
    ) -> builtins.list[Claim]:
        lease_id = uuid4()
        leased: dict[UUID, int] = {}
        for row in self.rows.values():
            if row.delivery.status is DeliveryStatus.PENDING and row.leased(now):
                leased[row.delivery.endpoint_id] = leased.get(row.delivery.endpoint_id, 0) + 1
        due = sorted(
            (row for row in self.rows.values() if self._due(row, now)),
            key=lambda row: (row.delivery.next_attempt_at, row.seq),
        )
        claims: list[Claim] = []
        for row in due:
            endpoint_id = row.delivery.endpoint_id
            if len(claims) >= limit or leased.get(endpoint_id, 0) >= per_endpoint:
                continue
            leased[endpoint_id] = leased.get(endpoint_id, 0) + 1
            row.lease, row.lease_until = lease_id, now + lease
            claims.append(self._claim_of(row, lease_id, now))
        return claims

    def _claim_of(self, row: _Row, lease_id: UUID, now: datetime) -> Claim:
        delivery = row.delivery
        endpoint = self.endpoints_by_id[delivery.endpoint_id]
        secrets = sorted(self.secrets[endpoint.id], key=lambda s: s.serial, reverse=True)
        return Claim(
            endpoint_id=endpoint.id,
            event_id=delivery.event_id,
            lease=lease_id,
            url=endpoint.url,
            body=self.events[delivery.event_id].body,
            sealed_secrets=tuple(s.sealed for s in secrets if s.signs_at(now)),
            attempts=delivery.attempts,
            event_type=delivery.event_type,
            order_id=delivery.order_id,
            version=delivery.version,
            first_attempt_at=row.first_attempt_at,
        )

    async def settle_many(
        self, settled: Sequence[tuple[Claim, Outcome]]
    ) -> builtins.set[tuple[UUID, UUID]]:
        return {
            (claim.endpoint_id, claim.event_id)
            for claim, outcome in settled
            if self._settle(claim, outcome)
        }

    def _settle(self, claim: Claim, outcome: Outcome) -> bool:
        row = self.rows.get((claim.endpoint_id, claim.event_id))
        if row is None or row.lease != claim.lease:
            return False
        decision = outcome.decision
        status = {
            Delivered: DeliveryStatus.SUCCEEDED,
            GiveUp: DeliveryStatus.FAILED,
            RetryAt: DeliveryStatus.PENDING,
        }[type(decision)]
        row.first_attempt_at = row.first_attempt_at or outcome.at
        row.lease = row.lease_until = None
        row.delivery = replace(
            row.delivery,
            status=status,
            attempts=row.delivery.attempts + 1,
            last_attempt_at=outcome.at,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            next_attempt_at=decision.at if isinstance(decision, RetryAt) else None,
            delivered_at=outcome.at if isinstance(decision, Delivered) else None,
        )
        if isinstance(decision, Delivered):
            last = self.last_success.get(claim.endpoint_id)
            self.last_success[claim.endpoint_id] = max(last or outcome.at, outcome.at)
        self._disable(claim.endpoint_id, outcome)
        return True

    def _disable(self, endpoint_id: UUID, outcome: Outcome) -> None:
        disable = outcome.disable
        endpoint = self.endpoints_by_id.get(endpoint_id)
        if disable is None or endpoint is None or not endpoint.enabled:
            return
        last = self.last_success.get(endpoint_id)
        since = disable.unless_success_since
        if since is not None and last is not None and last >= since:
            return
        self.endpoints_by_id[endpoint_id] = replace(
            endpoint,
            enabled=False,
            disabled_reason=disable.reason,
            disabled_at=outcome.at,
            updated_at=outcome.at,
        )
