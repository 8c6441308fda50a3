"""The use cases of webhook endpoints, for one customer at a time: the gateway's routes and the
`otc webhooks` commands call these, nothing else. An endpoint of another customer is not found,
exactly like one that does not exist.

A new endpoint's signing secret is returned once, by `register` (and by `rotate`); the store
keeps it sealed. With an Idempotency-Key, the endpoint's id is derived from the customer and
the key, so a retried registration finds the endpoint it made (and its secret) instead of
making a second one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from services.settings import Settings
from services.webhooks.errors import (
    EndpointDisabledError,
    EndpointNotFoundError,
    IdempotencyConflictError,
    WebhooksUnavailableError,
)
from services.webhooks.events import test_message
from services.webhooks.model import Delivery, Endpoint, EndpointChanges, NewEndpoint, WebhookEvent
from services.webhooks.signing import SecretBox, new_secret
from services.webhooks.ssrf import UrlGuard
from services.webhooks.store import PostgresWebhookStore, WebhookStore

ENDPOINT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:otc:webhook-endpoints")


@dataclass(frozen=True)
class Registered:
    endpoint: Endpoint
    secret: str
    replayed: bool


@dataclass(frozen=True)
class Rotated:
    secret: str
    previous_secrets_expire_at: datetime


@dataclass
class WebhookEndpoints:
    store: WebhookStore
    guard: UrlGuard
    box: SecretBox | None
    grace: timedelta = timedelta(days=1)
    max_endpoints: int = 20
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _box(self) -> SecretBox:
        if self.box is None:
            raise WebhooksUnavailableError("webhooks are not configured on this server")
        return self.box

    async def register(
        self,
        customer_id: UUID,
        *,
        url: str,
        event_types: Sequence[str] = (),
        description: str = "",
        idempotency_key: UUID | None = None,
    ) -> Registered:
        box = self._box()
        await self.guard.check(url)
        types = tuple(sorted(set(event_types)))
        fingerprint = _fingerprint(url, types, description) if idempotency_key else None
        endpoint_id = (
            uuid5(ENDPOINT_NAMESPACE, f"{customer_id}:{idempotency_key}")
            if idempotency_key
            else uuid4()
        )
        secret = new_secret()
        new = NewEndpoint(
            id=endpoint_id,
            customer_id=customer_id,
            url=url,
            description=description,
            event_types=types,
            sealed_secret=box.seal(secret),
            fingerprint=fingerprint,
        )
        endpoint, added = await self.store.add_endpoint(new, self.clock(), self.max_endpoints)
        if added:
            return Registered(endpoint, secret, replayed=False)
        first = await self.store.first_secret(endpoint.id, self.clock())
        if first is None:
            raise IdempotencyConflictError(
                "the endpoint made with this Idempotency-Key has rotated its secret since"
            )
        return Registered(endpoint, box.open(first), replayed=True)

    async def get(self, customer_id: UUID, endpoint_id: UUID) -> Endpoint:
        found = await self.store.endpoint(customer_id, endpoint_id)
        if found is None:
            raise EndpointNotFoundError("webhook endpoint not found")
        return found

    async def page(self, customer_id: UUID, *, page: int, limit: int) -> tuple[list[Endpoint], int]:
        return await self.store.endpoints(customer_id, page=page, limit=limit)

    async def change(
        self, customer_id: UUID, endpoint_id: UUID, changes: EndpointChanges
    ) -> Endpoint:
        if changes.url is not None:
            await self.guard.check(changes.url)
        if changes.event_types is not None:
            changes = EndpointChanges(
                url=changes.url,
                description=changes.description,
                event_types=tuple(sorted(set(changes.event_types))),
                enabled=changes.enabled,
            )
        found = await self.store.update_endpoint(customer_id, endpoint_id, changes, self.clock())
        if found is None:
            raise EndpointNotFoundError("webhook endpoint not found")
        return found

    async def remove(self, customer_id: UUID, endpoint_id: UUID) -> None:
        if not await self.store.delete_endpoint(customer_id, endpoint_id):
            raise EndpointNotFoundError("webhook endpoint not found")

    async def rotate(self, customer_id: UUID, endpoint_id: UUID) -> Rotated:
        box = self._box()
        secret = new_secret()
        until = await self.store.rotate_secret(
            customer_id, endpoint_id, box.seal(secret), self.clock(), self.grace
        )
        if until is None:
            raise EndpointNotFoundError("webhook endpoint not found")
        return Rotated(secret, until)

    async def send_test(self, customer_id: UUID, endpoint_id: UUID) -> Delivery:
        endpoint = await self.get(customer_id, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabledError("the endpoint is disabled: enable it first")
        now = self.clock()
        message = test_message(endpoint.id, now)
        event = WebhookEvent(
            event_id=uuid4(),
            customer_id=customer_id,
            type=message.type,
            occurred_at=now,
            body=message.to_bytes(),
        )
        return await self.store.add_test(endpoint.id, event, now)

    async def replay(
        self, customer_id: UUID, endpoint_id: UUID, since: datetime, until: datetime | None
    ) -> int:
        await self.get(customer_id, endpoint_id)
        now = self.clock()
        return await self.store.replay(customer_id, endpoint_id, since, until or now, now)

    async def deliveries(
        self, customer_id: UUID, endpoint_id: UUID, *, page: int, limit: int
    ) -> tuple[list[Delivery], int]:
        await self.get(customer_id, endpoint_id)
        return await self.store.deliveries(endpoint_id, page=page, limit=limit)


def _fingerprint(url: str, event_types: tuple[str, ...], description: str) -> str:
    canonical = json.dumps([url, list(event_types), description], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@asynccontextmanager
async def open_webhook_endpoints(settings: Settings) -> AsyncIterator[WebhookEndpoints]:
    """The use cases on the PostgreSQL store, its schema created: the gateway's composition
    root keeps them open while it serves."""
    key = settings.webhook_secrets_key
    async with PostgresWebhookStore(settings) as store:
        await store.create_schema()
        yield WebhookEndpoints(
            store=store,
            guard=UrlGuard(allow_loopback=settings.webhook_allow_loopback),
            box=None if key is None else SecretBox(key.get_secret_value()),
            grace=timedelta(seconds=settings.webhook_secret_grace_seconds),
            max_endpoints=settings.webhook_max_endpoints,
        )
