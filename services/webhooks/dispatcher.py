"""Order events from Kafka -> one delivery per matching endpoint, recorded in PostgreSQL.

For a batch of records: each event a customer can receive (services/webhooks/events.py) gets
its message body, with the public order view after the event, and the store records it with
one pending delivery per enabled endpoint of the order's customer that receives its type, all
in one transaction. Recording is idempotent (a delivery is keyed by endpoint and event), so the
subscriber commits the batch's offsets only after it returns, and a batch redelivered after a
crash records nothing twice.

A record that does not parse, or whose order the event store does not hold after a few tries,
goes to the dead-letter topic with the name `webhooks` and the error; the rest of the batch
goes on. Infrastructure failures (PostgreSQL, Kafka) are raised: the batch is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from domain.views import OrderView
from services.contracts import EventEnvelope, Unparseable, parse_event
from services.dead_letters import DeadLetter, KafkaRecord, summarise
from services.resilience import INFRASTRUCTURE_ERRORS
from services.webhooks.events import is_customer_facing, order_message
from services.webhooks.model import WebhookEvent
from services.webhooks.store import WebhookStore
from services.webhooks.views import Wanted

log = logging.getLogger(__name__)

NAME = "webhooks"


LoadViews = Callable[[Wanted], Awaitable[dict[tuple[UUID, int], OrderView]]]


class Dispatcher:
    def __init__(  # noqa: PLR0913 - the dispatcher's ports
        self,
        store: WebhookStore,
        *,
        load_views: LoadViews,
        dead_letter: DeadLetter,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
        recorded: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.load_views = load_views
        self.dead_letter = dead_letter
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.recorded = recorded
        self.clock = clock
        self.sleep = sleep

    async def handle_records(self, records: Sequence[KafkaRecord]) -> int:
        """`handle_received` of records not parsed yet."""
        return await self.handle_received([(r, parse_event(r.value)) for r in records])

    async def handle_received(
        self, batch: Sequence[tuple[KafkaRecord, EventEnvelope | Unparseable]]
    ) -> int:
        """Record the deliveries of a batch; returns how many are new."""
        envelopes: list[tuple[KafkaRecord, EventEnvelope]] = []
        for record, envelope in batch:
            if isinstance(envelope, Unparseable):
                await self.dead_letter(record, f"{NAME}: unparseable: {summarise(envelope.error)}")
                continue
            if is_customer_facing(envelope.type):
                envelopes.append((record, envelope))
        views = await self.views_of(envelopes)
        events = [
            webhook_event(envelope, views[envelope.order_id, envelope.version])
            for _, envelope in envelopes
            if (envelope.order_id, envelope.version) in views
        ]
        added = await self.store.record(events, self.clock())
        log.debug("%s: %d records, %d deliveries recorded", NAME, len(batch), added)
        if added:
            self.recorded()
        return added

    async def views_of(
        self, envelopes: Sequence[tuple[KafkaRecord, EventEnvelope]]
    ) -> dict[tuple[UUID, int], OrderView]:
        """The view after each event, tried a bounded number of times; an event still without
        one is dead-lettered."""
        missing = list(envelopes)
        found: dict[tuple[UUID, int], OrderView] = {}
        if not missing:
            return found
        failure = "its order is not in the event store at that version"
        for attempt in range(1, self.attempts + 1):
            try:
                found.update(await self.load_views(wanted(missing)))
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as error:  # noqa: BLE001 - an event of its own: retried, then dead-lettered
                failure = summarise(error)
            missing = [(r, e) for r, e in missing if (e.order_id, e.version) not in found]
            if not missing:
                return found
            if attempt < self.attempts:
                await self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        for record, envelope in missing:
            message = f"{NAME}: no order view after {self.attempts} tries: {failure}"
            log.error("%s: dead-lettering event %s: %s", NAME, envelope.event_id, message)
            await self.dead_letter(record, message)
        return found


def wanted(envelopes: Sequence[tuple[KafkaRecord, EventEnvelope]]) -> dict[UUID, set[int]]:
    versions: dict[UUID, set[int]] = {}
    for _, envelope in envelopes:
        versions.setdefault(envelope.order_id, set()).add(envelope.version)
    return versions


def webhook_event(envelope: EventEnvelope, view: OrderView) -> WebhookEvent:
    return WebhookEvent(
        event_id=envelope.event_id,
        customer_id=envelope.customer_id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        body=order_message(envelope, view).to_bytes(),
        order_id=envelope.order_id,
        version=envelope.version,
    )
