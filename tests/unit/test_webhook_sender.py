"""The sender on the in-memory store and a fake receiver: what is sent, in which order, how
many at once, and what failures do to a delivery and its endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from standardwebhooks import Webhook

from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.fake import InMemoryWebhookStore
from services.webhooks.model import DeliveryStatus, WebhookEvent
from services.webhooks.schedule import Answer, RetrySchedule
from services.webhooks.sender import Sender, SenderPolicy
from services.webhooks.signing import SecretBox, new_box_key, signature
from services.webhooks.ssrf import UrlGuard

URL = "https://hooks.example.com/otc"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sent:
    headers: dict[str, str]
    body: bytes

    @property
    def message(self) -> dict[str, object]:
        found: dict[str, object] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    """Answers with `answer(sent)`; records every request it got."""

    answer: Callable[[Sent], Answer] = lambda _: Answer(204)
    got: list[Sent] = field(default_factory=list)
    hold: asyncio.Event | None = None
    in_flight: int = 0
    most_in_flight: int = 0

    async def __call__(self, url: str, headers: dict[str, str], body: bytes) -> Answer:  # noqa: ARG002 - the Post signature
        sent = Sent(headers, body)
        self.got.append(sent)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.hold is not None:
                await self.hold.wait()
            return self.answer(sent)
        finally:
            self.in_flight -= 1


async def public_dns(host: str, port: int) -> list[str]:  # noqa: ARG001 - the resolver's signature
    return ["93.184.215.14"]


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    store: InMemoryWebhookStore = field(default_factory=InMemoryWebhookStore)
    box: SecretBox = field(default_factory=lambda: SecretBox(new_box_key()))
    receiver: Receiver = field(default_factory=Receiver)
    customer: UUID = field(default_factory=uuid.uuid4)
    waits: tuple[float, ...] = (10.0, 20.0)
    per_endpoint: int = 8
    max_in_flight: int = 64

    @property
    def endpoints(self) -> WebhookEndpoints:
        guard = UrlGuard(allow_loopback=False, resolve=public_dns)
        return WebhookEndpoints(self.store, guard, self.box, clock=self.clock)

    def sender(self) -> Sender:
        policy = SenderPolicy(
            schedule=RetrySchedule(waits=self.waits, jitter=0.0),
            per_endpoint=self.per_endpoint,
            max_in_flight=self.max_in_flight,
        )
        return Sender(self.store, self.receiver, self.box, policy=policy, clock=self.clock)

    async def register(self, *types: str) -> tuple[UUID, str]:
        made = await self.endpoints.register(self.customer, url=URL, event_types=types)
        return made.endpoint.id, made.secret

    async def events(self, order: UUID, *order_versions: int) -> None:
        await self.store.record(
            [
                WebhookEvent(
                    event_id=uuid.uuid5(order, str(v)),
                    customer_id=self.customer,
                    type="order.confirmed",
                    occurred_at=self.clock(),
                    body=json.dumps(
                        {"type": "order.confirmed", "order": str(order), "v": v}
                    ).encode(),
                    order_id=order,
                    version=v,
                )
                for v in order_versions
            ],
            self.clock(),
        )


def sent_versions(receiver: Receiver, order: UUID) -> list[object]:
    return [s.message["v"] for s in receiver.got if s.message.get("order") == str(order)]


async def test_a_delivery_is_the_stored_body_signed_per_standard_webhooks() -> None:
    world = World()
    endpoint_id, secret = await world.register()
    order = uuid.uuid4()
    await world.events(order, 1)

    await world.sender().drain()

    [sent] = world.receiver.got
    assert Webhook(secret).verify(sent.body, sent.headers)["v"] == 1
    assert (
        sent.headers["webhook-id"]
        == world.store.rows[endpoint_id, uuid.uuid5(order, "1")].delivery.webhook_id
    )
    [delivery] = (await world.store.deliveries(endpoint_id, page=1, limit=5))[0]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 204)


async def test_a_retry_sends_the_same_id_and_body_with_a_new_timestamp_and_signature() -> None:
    world = World()
    _, secret = await world.register()
    world.receiver.answer = lambda _: (
        Answer(503, "HTTP 503") if len(world.receiver.got) == 1 else Answer(200)
    )
    await world.events(uuid.uuid4(), 1)
    sender = world.sender()

    await sender.drain()
    world.clock.advance(10)
    await sender.drain()

    first, second = world.receiver.got
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 10
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert Webhook(secret).verify(second.body, second.headers)


async def test_a_later_event_of_an_order_waits_for_the_earlier_one_and_other_orders_do_not() -> (
    None
):
    world = World()
    await world.register()
    held, free = uuid.uuid4(), uuid.uuid4()
    world.receiver.answer = lambda sent: (
        Answer(500, "HTTP 500")
        if sent.message["order"] == str(held) and len(sent_versions(world.receiver, held)) <= 2
        else Answer(204)
    )
    await world.events(held, 1, 2, 3)
    await world.events(free, 1, 2, 3)
    sender = world.sender()

    await sender.drain()
    assert sent_versions(world.receiver, held) == [1]
    assert sent_versions(world.receiver, free) == [1, 2, 3]

    world.clock.advance(10)
    await sender.drain()
    world.clock.advance(20)
    await sender.drain()

    assert sent_versions(world.receiver, held) == [1, 1, 1, 2, 3]


async def test_attempts_to_one_endpoint_are_bounded_and_others_are_not_held_up() -> None:
    world = World(per_endpoint=3, max_in_flight=5)
    await world.register()
    world.receiver.hold = asyncio.Event()
    for _ in range(10):
        await world.events(uuid.uuid4(), 1)
    sender = world.sender()

    await sender.claim_and_start()
    await asyncio.sleep(0)
    assert world.receiver.in_flight == 3

    world.customer = uuid.uuid4()
    await world.register()
    for _ in range(10):
        await world.events(uuid.uuid4(), 1)
    await sender.claim_and_start()
    await asyncio.sleep(0)
    assert world.receiver.in_flight == 5

    world.receiver.hold.set()
    await sender.drain()
    assert len(world.receiver.got) == 20
    assert world.receiver.most_in_flight == 5


async def test_an_endpoint_that_fails_every_attempt_of_the_schedule_is_disabled_with_why() -> None:
    world = World()
    endpoint_id, _ = await world.register()
    world.receiver.answer = lambda _: Answer(None, "could not connect: refused")
    await world.events(uuid.uuid4(), 1)
    sender = world.sender()

    for wait in (0, 10, 20):
        world.clock.advance(wait)
        await sender.drain()

    endpoint = await world.store.endpoint(world.customer, endpoint_id)
    assert endpoint is not None
    assert not endpoint.enabled
    assert endpoint.disabled_reason is not None
    assert "every attempt failed" in endpoint.disabled_reason
    assert "3 attempts" in endpoint.disabled_reason
    assert "could not connect" in endpoint.disabled_reason
    [delivery] = (await world.store.deliveries(endpoint_id, page=1, limit=5))[0]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)


async def test_410_gone_disables_the_endpoint_at_once() -> None:
    world = World()
    endpoint_id, _ = await world.register()
    world.receiver.answer = lambda _: Answer(410, "HTTP 410")
    await world.events(uuid.uuid4(), 1, 2)

    await world.sender().drain()

    endpoint = await world.store.endpoint(world.customer, endpoint_id)
    assert endpoint is not None
    assert not endpoint.enabled
    assert "410" in (endpoint.disabled_reason or "")
    assert len(world.receiver.got) == 1


async def test_a_secret_rotation_signs_with_both_secrets_during_the_grace_period() -> None:
    world = World()
    endpoint_id, old = await world.register()
    rotated = await world.endpoints.rotate(world.customer, endpoint_id)
    await world.events(uuid.uuid4(), 1)

    await world.sender().drain()

    [sent] = world.receiver.got
    assert Webhook(old).verify(sent.body, sent.headers)
    assert Webhook(rotated.secret).verify(sent.body, sent.headers)
    assert rotated.previous_secrets_expire_at == world.clock() + timedelta(days=1)


async def test_after_the_grace_period_only_the_new_secret_signs() -> None:
    world = World()
    endpoint_id, _ = await world.register()
    rotated = await world.endpoints.rotate(world.customer, endpoint_id)
    world.clock.advance(timedelta(days=1).total_seconds() + 1)
    await world.events(uuid.uuid4(), 1)

    await world.sender().drain()

    [sent] = world.receiver.got
    stamp = int(sent.headers["webhook-timestamp"])
    only_new = signature(rotated.secret, sent.headers["webhook-id"], stamp, sent.body)
    assert sent.headers["webhook-signature"] == only_new
