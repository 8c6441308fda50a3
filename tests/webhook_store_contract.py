"""The webhook store's contract: the same tests run against the in-memory fake (unit) and the
PostgreSQL store (integration), so the fake the unit tests lean on keeps the real rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from services.webhooks.errors import EndpointLimitError, IdempotencyConflictError
from services.webhooks.model import (
    Claim,
    DeliveryStatus,
    Disable,
    Endpoint,
    EndpointChanges,
    NewEndpoint,
    Outcome,
    WebhookEvent,
)
from services.webhooks.schedule import Delivered, GiveUp, RetryAt
from services.webhooks.store import WebhookStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def endpoint(
    store: WebhookStore,
    customer: UUID,
    *types: str,
    secret: bytes = b"sealed-1",
) -> Endpoint:
    new = NewEndpoint(
        id=uuid.uuid4(),
        customer_id=customer,
        url="https://hooks.example.com/otc",
        description="",
        event_types=types,
        sealed_secret=secret,
    )
    made, _ = await store.add_endpoint(new, T0, limit=20)
    return made


def event(
    customer: UUID, order: UUID, version: int, kind: str = "order.confirmed", when: float = 0
) -> WebhookEvent:
    return WebhookEvent(
        event_id=uuid.uuid5(order, str(version)),
        customer_id=customer,
        type=kind,
        occurred_at=at(when),
        body=f'{{"type":"{kind}","v":{version}}}'.encode(),
        order_id=order,
        version=version,
    )


async def claim(
    store: WebhookStore, now: float = 0, limit: int = 100, per: int = 100
) -> list[Claim]:
    return await store.claim(at(now), limit=limit, per_endpoint=per, lease=LEASE)


def delivered(now: float = 1) -> Outcome:
    return Outcome(at=at(now), decision=Delivered(), status_code=204)


def retry(now: float, later: float) -> Outcome:
    return Outcome(at=at(now), decision=RetryAt(at(later)), status_code=503, error="HTTP 503")


def versions(claims: list[Claim]) -> list[tuple[UUID | None, int | None]]:
    return sorted((c.order_id, c.version) for c in claims)


class StoreContract:
    """Subclasses provide a fresh `store` fixture."""

    # ------------------------------------------------------------------ recording

    async def test_records_one_delivery_per_enabled_endpoint_of_the_customer_that_takes_the_type(
        self, store: WebhookStore
    ) -> None:
        customer, other = uuid.uuid4(), uuid.uuid4()
        every = await endpoint(store, customer)
        paid_only = await endpoint(store, customer, "order.paid_out")
        paused = await endpoint(store, customer)
        await store.update_endpoint(customer, paused.id, EndpointChanges(enabled=False), T0)
        await endpoint(store, other)

        added = await store.record([event(customer, uuid.uuid4(), 1)], T0)

        assert added == 1
        assert [c.endpoint_id for c in await claim(store)] == [every.id]
        assert (await store.deliveries(paid_only.id, page=1, limit=10))[1] == 0

    async def test_recording_the_same_events_again_adds_nothing(self, store: WebhookStore) -> None:
        customer, order = uuid.uuid4(), uuid.uuid4()
        hook = await endpoint(store, customer)
        events = [event(customer, order, 1), event(customer, order, 2)]

        first = await store.record(events, T0)
        again = await store.record(events, at(5))

        assert (first, again) == (2, 0)
        assert (await store.deliveries(hook.id, page=1, limit=10))[1] == 2

    async def test_an_event_keeps_the_body_it_was_first_recorded_with(
        self, store: WebhookStore
    ) -> None:
        customer, order = uuid.uuid4(), uuid.uuid4()
        await endpoint(store, customer)
        first = event(customer, order, 1)
        await store.record([first], T0)
        changed = WebhookEvent(**{**vars(first), "body": b'{"other":true}'})

        await store.record([changed], at(1))

        [claimed] = await claim(store, 2)
        assert claimed.body == first.body

    # ------------------------------------------------------------------ claiming

    async def test_a_later_version_waits_until_the_earlier_one_to_that_endpoint_succeeded(
        self, store: WebhookStore
    ) -> None:
        customer, order = uuid.uuid4(), uuid.uuid4()
        await endpoint(store, customer)
        await store.record([event(customer, order, v) for v in (1, 2, 3)], T0)

        [first] = await claim(store)
        assert first.version == 1
        assert await claim(store) == []
        await store.settle(first, delivered())
        [second] = await claim(store, 2)
        assert second.version == 2

    async def test_a_failed_earlier_version_holds_its_order_but_not_other_orders(
        self, store: WebhookStore
    ) -> None:
        customer, stuck, free = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await endpoint(store, customer)
        await store.record([event(customer, stuck, 1), event(customer, stuck, 2)], T0)
        await store.record([event(customer, free, 1), event(customer, free, 2)], T0)

        claims = await claim(store)
        assert versions(claims) == sorted([(stuck, 1), (free, 1)])
        for claimed in claims:
            gave_up = Outcome(at=at(1), decision=GiveUp(gone=False), status_code=500)
            ok = delivered()
            await store.settle(claimed, gave_up if claimed.order_id == stuck else ok)

        assert versions(await claim(store, 2)) == [(free, 2)]

    async def test_the_same_order_to_another_endpoint_is_not_held(
        self, store: WebhookStore
    ) -> None:
        customer, order = uuid.uuid4(), uuid.uuid4()
        one = await endpoint(store, customer)
        two = await endpoint(store, customer)
        await store.record([event(customer, order, 1), event(customer, order, 2)], T0)
        claims = await claim(store)
        mine = next(c for c in claims if c.endpoint_id == one.id)
        await store.settle(mine, delivered())

        [next_one] = await claim(store, 2)

        assert (next_one.endpoint_id, next_one.version) == (one.id, 2)
        assert {c.endpoint_id for c in claims} == {one.id, two.id}

    async def test_attempts_in_flight_count_against_the_bound_per_endpoint(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        busy = await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1) for _ in range(5)], T0)

        first = await claim(store, per=2)
        second = await claim(store, per=2)
        await store.settle(first[0], delivered())
        third = await claim(store, 2, per=2)

        assert (len(first), len(second), len(third)) == (2, 0, 1)
        assert {c.endpoint_id for c in first} == {busy.id}

    async def test_a_claim_takes_no_more_than_its_limit(self, store: WebhookStore) -> None:
        customer = uuid.uuid4()
        await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1) for _ in range(5)], T0)

        assert len(await claim(store, limit=3)) == 3
        assert len(await claim(store, limit=3)) == 2

    async def test_a_lease_that_runs_out_makes_the_delivery_due_again_and_voids_the_old_one(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1)], T0)
        [lost] = await claim(store)

        assert await claim(store, 30) == []
        [again] = await claim(store, LEASE.total_seconds() + 1)
        assert not await store.settle(lost, delivered(61))
        assert await store.settle(again, delivered(62))
        assert again.event_id == lost.event_id

    async def test_outcomes_recorded_together_keep_only_those_whose_lease_holds(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1) for _ in range(2)], T0)
        first, second = await claim(store)
        [again] = await claim(store, LEASE.total_seconds() + 1, limit=1)
        stale, fresh = (first, second) if again.event_id == first.event_id else (second, first)

        recorded = await store.settle_many([(fresh, delivered(61)), (stale, delivered(61))])

        assert recorded == {(fresh.endpoint_id, fresh.event_id)}

    async def test_a_retry_is_due_at_its_time_and_not_before(self, store: WebhookStore) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1)], T0)
        [first] = await claim(store)
        await store.settle(first, retry(1, 10))

        assert await claim(store, 9) == []
        [second] = await claim(store, 10)
        [shown] = (await store.deliveries(hook.id, page=1, limit=10))[0]
        assert second.attempts == 1
        assert (shown.status, shown.attempts, shown.last_status_code) == ("pending", 1, 503)
        assert shown.next_attempt_at == at(10)

    async def test_a_disabled_endpoint_gets_no_attempts(self, store: WebhookStore) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1)], T0)
        await store.update_endpoint(customer, hook.id, EndpointChanges(enabled=False), T0)

        assert await claim(store) == []
        await store.update_endpoint(customer, hook.id, EndpointChanges(enabled=True), T0)
        assert len(await claim(store)) == 1

    # ------------------------------------------------------------------ outcomes

    async def test_giving_up_disables_the_endpoint_when_nothing_succeeded_since_the_first_try(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1)], T0)
        [claimed] = await claim(store)
        reason = Disable("every attempt failed", unless_success_since=at(0))

        await store.settle(claimed, Outcome(at=at(1), decision=GiveUp(gone=False), disable=reason))

        found = await store.endpoint(customer, hook.id)
        assert found is not None
        assert (found.enabled, found.disabled_reason) == (False, "every attempt failed")
        [shown] = (await store.deliveries(hook.id, page=1, limit=10))[0]
        assert (shown.status, shown.next_attempt_at) == (DeliveryStatus.FAILED, None)

    async def test_giving_up_leaves_an_endpoint_enabled_that_succeeded_meanwhile(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1) for _ in range(2)], T0)
        failing, working = await claim(store)
        await store.settle(working, delivered(5))
        reason = Disable("every attempt failed", unless_success_since=at(0))

        await store.settle(failing, Outcome(at=at(9), decision=GiveUp(gone=False), disable=reason))

        found = await store.endpoint(customer, hook.id)
        assert found is not None
        assert found.enabled

    # ------------------------------------------------------------------ replay and listing

    async def test_replay_queues_the_window_again_with_a_fresh_schedule(
        self, store: WebhookStore
    ) -> None:
        customer, other, order = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        hook = await endpoint(store, customer)
        await endpoint(store, other)
        inside = [event(customer, order, 1, when=10), event(customer, order, 2, when=20)]
        outside = event(customer, uuid.uuid4(), 1, when=40)
        theirs = event(other, uuid.uuid4(), 1, when=15)
        await store.record([*inside, outside, theirs], T0)
        for claimed in await claim(store):
            await store.settle(claimed, delivered())
        [second] = [c for c in await claim(store, 2) if c.endpoint_id == hook.id]
        await store.settle(second, delivered(3))

        queued = await store.replay(customer, hook.id, at(0), at(30), at(100))

        assert queued == 2
        [again] = await claim(store, 100)
        assert (again.order_id, again.version, again.attempts) == (order, 1, 0)

    async def test_deliveries_are_listed_newest_first_with_the_total(
        self, store: WebhookStore
    ) -> None:
        customer, order = uuid.uuid4(), uuid.uuid4()
        hook = await endpoint(store, customer)
        await store.record([event(customer, order, v) for v in (1, 2, 3)], T0)

        page, total = await store.deliveries(hook.id, page=1, limit=2)
        rest, _ = await store.deliveries(hook.id, page=2, limit=2)

        assert total == 3
        assert [d.version for d in page + rest] == [3, 2, 1]
        assert page[0].webhook_id.startswith("msg_")

    async def test_a_test_event_goes_to_its_endpoint_only(self, store: WebhookStore) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer)
        await endpoint(store, customer)
        probe = WebhookEvent(
            event_id=uuid.uuid4(),
            customer_id=customer,
            type="webhook.test",
            occurred_at=T0,
            body=b'{"type":"webhook.test"}',
        )

        delivery = await store.add_test(hook.id, probe, T0)

        assert (delivery.status, delivery.order_id) == (DeliveryStatus.PENDING, None)
        assert [c.endpoint_id for c in await claim(store)] == [hook.id]

    # ------------------------------------------------------------------ endpoints and secrets

    async def test_claims_carry_every_secret_that_signs_newest_first_until_the_grace_ends(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer, secret=b"old")
        await store.record([event(customer, uuid.uuid4(), 1) for _ in range(2)], T0)

        ends = await store.rotate_secret(customer, hook.id, b"new", at(0), timedelta(seconds=50))

        assert ends == at(50)
        [during, after] = await claim(store, 10, limit=1), await claim(store, 60, limit=1)
        assert during[0].sealed_secrets == (b"new", b"old")
        assert after[0].sealed_secrets == (b"new",)

    async def test_an_endpoint_of_another_customer_is_not_found(self, store: WebhookStore) -> None:
        mine, theirs = uuid.uuid4(), uuid.uuid4()
        hook = await endpoint(store, theirs)

        assert await store.endpoint(mine, hook.id) is None
        assert await store.update_endpoint(mine, hook.id, EndpointChanges(url="x"), T0) is None
        assert not await store.delete_endpoint(mine, hook.id)
        assert await store.rotate_secret(mine, hook.id, b"s", T0, LEASE) is None
        assert (await store.endpoints(mine, page=1, limit=10)) == ([], 0)

    async def test_the_same_endpoint_id_returns_the_first_for_the_same_request_only(
        self, store: WebhookStore
    ) -> None:
        customer = uuid.uuid4()
        new = NewEndpoint(
            id=uuid.uuid4(),
            customer_id=customer,
            url="https://hooks.example.com/a",
            description="",
            event_types=(),
            sealed_secret=b"s",
            fingerprint="f1",
        )
        first, added = await store.add_endpoint(new, T0, limit=20)
        again, added_again = await store.add_endpoint(new, at(1), limit=20)

        assert (added, added_again, again) == (True, False, first)
        with pytest.raises(IdempotencyConflictError):
            await store.add_endpoint(
                NewEndpoint(**{**vars(new), "fingerprint": "f2"}), at(2), limit=20
            )

    async def test_a_customer_has_at_most_the_limit_of_endpoints(self, store: WebhookStore) -> None:
        customer = uuid.uuid4()
        for _ in range(2):
            new = NewEndpoint(uuid.uuid4(), customer, "https://h.example.com", "", (), b"s")
            await store.add_endpoint(new, T0, limit=2)

        third = NewEndpoint(uuid.uuid4(), customer, "https://h.example.com", "", (), b"s")
        with pytest.raises(EndpointLimitError):
            await store.add_endpoint(third, T0, limit=2)

    async def test_deleting_an_endpoint_removes_its_deliveries(self, store: WebhookStore) -> None:
        customer = uuid.uuid4()
        hook = await endpoint(store, customer)
        await store.record([event(customer, uuid.uuid4(), 1)], T0)

        assert await store.delete_endpoint(customer, hook.id)

        assert await claim(store) == []
        assert await store.endpoint(customer, hook.id) is None
