"""The hash chain of domain/hash_chain.py and domain/order.py: what an event's hash covers, that
it survives the event store's serialisation, and that each order's events link up; checkpoints.

The round trips go through the `Orders` application's own mapper (its transcodings), on the
in-memory store: the same bytes PostgreSQL holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.hash_chain import (
    EVENT_HASH,
    Leaf,
    canonical_form,
    coverage_of,
    digest,
    event_digest,
    id_ranges,
    ids_in,
    next_checkpoint,
    stored_digest,
)
from domain.order import Cause, Order, Side, Status
from services.engine.event_store import Orders
from tests.unit.strategies import CUSTOMER, T0, decimals_of_any_shape, new_order
from tests.unit.test_order_lifecycle import Desk, order_in

ORDERS = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]

texts = st.text(st.characters(codec="utf-8"), max_size=30)
optional_texts = st.none() | texts
moments = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; zones below
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(ZONES),
)


def base_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "originator_id": draw(st.uuids()),
        "originator_version": draw(st.integers(1, 10**6)),
        "timestamp": draw(moments),
        "customer_id": draw(st.uuids()),
        "side": draw(st.sampled_from(Side)).value,
        "actor_kind": draw(st.sampled_from(["customer", "operator", "system"])),
        "actor_id": draw(texts),
        "actor_name": draw(optional_texts),
        "command_id": draw(st.uuids()),
        "previous_hash": draw(st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)),
    }


def made(cls: Any, **fields: Any) -> Order.Event:  # noqa: ANN401 - an event class and its fields
    event: Order.Event = cls(**fields)
    return event


@st.composite
def order_events(draw: st.DrawFn) -> Order.Event:
    """An order event of one of four classes that between them have every kind of field."""
    fields = base_fields(draw)
    kind = draw(st.sampled_from(["quoted", "approved", "rejected", "unresolved"]))
    if kind == "quoted":
        return made(
            Order.Quoted,
            **{**fields, "originator_version": 1},
            originator_topic=get_topic(Order),
            source_id=draw(st.uuids()),
            source_amount=draw(decimals_of_any_shape()),
            destination_id=draw(st.uuids()),
            rate=draw(decimals_of_any_shape()),
            fee=draw(decimals_of_any_shape()),
            destination_amount=draw(decimals_of_any_shape()),
            expires_at=draw(moments),
            provider_quote_id=draw(optional_texts),
        )
    if kind == "approved":
        return made(
            Order.Approved,
            **fields,
            rate=draw(decimals_of_any_shape()),
            destination_amount=draw(decimals_of_any_shape()),
            provider_quote_id=draw(optional_texts),
            live_rate=draw(st.none() | decimals_of_any_shape()),
            override=draw(st.booleans()),
            override_reason=draw(optional_texts),
        )
    if kind == "rejected":
        return made(Order.Rejected, **fields, reason=draw(texts))
    return made(
        Order.MovementUnresolved,
        **fields,
        leg=draw(texts),
        attempt=draw(st.integers(1, 99)),
        reason=draw(texts),
    )


Draw = Callable[[st.SearchStrategy[Any]], Any]


def other_value(draw: Draw, value: object) -> object:
    """A value of the same kind as `value` that is a different fact."""
    new: object
    match value:
        case bool():
            return not value
        case int():
            new = draw(st.integers(0, 10**6))
        case Decimal():
            new = draw(decimals_of_any_shape())
            assume(str(new) != str(value))
            return new
        case UUID():
            new = draw(st.uuids())
        case datetime():
            moment: datetime = draw(moments)
            assume(moment.astimezone(UTC) != value.astimezone(UTC))
            return moment
        case _:
            new = draw(texts)
    assume(new != value)
    return new


def round_trip(event: Order.Event) -> tuple[Order.Event, str]:
    """The event as the store reads it back, and the hash recomputed from its stored state."""
    stored = ORDERS.mapper.to_stored_event(event)
    reloaded = ORDERS.mapper.to_domain_event(stored)
    assert isinstance(reloaded, Order.Event)
    state = ORDERS.mapper.transcoder.decode(stored.state)
    assert isinstance(stored.originator_id, UUID)
    return reloaded, stored_digest(
        stored.topic, stored.originator_id, stored.originator_version, state
    )


# ---------------------------------------------------------------- one event's hash


@given(order_events())
def test_an_events_hash_is_the_hash_of_its_canonical_form(event: Order.Event) -> None:
    assert event.event_hash == event_digest(event)
    assert len(event.event_hash) == 64


@given(order_events())
def test_the_hash_survives_the_event_stores_round_trip(event: Order.Event) -> None:
    reloaded, from_stored_state = round_trip(event)

    assert reloaded.event_hash == event.event_hash
    assert event_digest(reloaded) == event.event_hash
    assert from_stored_state == event.event_hash


@given(order_events(), st.data())
def test_any_field_changed_changes_the_hash(event: Order.Event, data: st.DataObject) -> None:
    names = [f.name for f in dataclasses.fields(event) if f.init]
    name = data.draw(st.sampled_from(names))
    change: dict[str, Any] = {name: other_value(data.draw, getattr(event, name))}
    changed = dataclasses.replace(event, **change)

    assert changed.event_hash != event.event_hash


@given(order_events())
def test_the_class_and_its_version_are_part_of_the_hash(event: Order.Event) -> None:
    fields = {k: v for k, v in vars(event).items() if k != EVENT_HASH}
    name = type(event).__qualname__

    assert digest(name, 3, fields) == event.event_hash
    assert digest("Order.Cancelled", 3, fields) != event.event_hash
    assert digest(name, 4, fields) != event.event_hash


def test_the_same_instant_in_any_zone_hashes_alike_and_another_instant_does_not() -> None:
    at = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    same = at.astimezone(timezone(timedelta(hours=5)))

    assert digest("E", 1, {"t": at}) == digest("E", 1, {"t": same})
    assert digest("E", 1, {"t": at}) != digest("E", 1, {"t": at + timedelta(microseconds=1)})


def test_a_decimal_keeps_its_places() -> None:
    assert digest("E", 1, {"a": Decimal("100.00")}) != digest("E", 1, {"a": Decimal("100.0")})
    assert digest("E", 1, {"a": Decimal("100.00")}) == digest("E", 1, {"a": Decimal("100.00")})


def test_values_of_different_types_never_share_a_form() -> None:
    some_id = UUID(int=7)
    pairs = [(1, "1"), (True, 1), (None, "null"), (some_id, str(some_id)), (Decimal(1), 1)]
    for one, other in pairs:
        assert canonical_form("E", 1, {"v": one}) != canonical_form("E", 1, {"v": other})
    assert canonical_form("E", 1, {"v": ("a", 1)}) == canonical_form("E", 1, {"v": ["a", 1]})


@pytest.mark.parametrize("value", [1.5, datetime(2025, 1, 1), {1: "a"}, object()])  # noqa: DTZ001 - a naive one on purpose
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        digest("E", 1, {"v": value})


# ---------------------------------------------------------------- an order's chain


def test_each_event_of_an_order_links_to_the_one_before() -> None:

    order = order_in(Side.BUY, Status.COMPLETED, Desk())
    events = [e for e in order.pending_events if isinstance(e, Order.Event)]

    assert [e.previous_hash for e in events] == [None, *(e.event_hash for e in events[:-1])]
    assert all(e.event_hash == event_digest(e) for e in events)
    assert order.last_event_hash == events[-1].event_hash


def test_an_order_read_back_continues_its_chain() -> None:

    app = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    order = new_order(Side.BUY, "100.00", "1.08", "0")
    app.save(order)
    reloaded = app.order(order.id)
    assert reloaded is not None

    reloaded.confirm(Side.BUY, None, Cause(CUSTOMER, UUID(int=99), T0))

    confirmed = reloaded.pending_events[-1]
    assert isinstance(confirmed, Order.Confirmed)
    assert confirmed.previous_hash == order.last_event_hash is not None


def test_an_event_stored_before_the_chain_reads_as_unchained_and_the_next_starts_afresh() -> None:

    quoted = new_order(Side.BUY, "100.00", "1.08", "0").pending_events[0]
    stored = ORDERS.mapper.to_stored_event(quoted)
    state = ORDERS.mapper.transcoder.decode(stored.state)
    del state["previous_hash"], state["event_hash"]
    old = dataclasses.replace(
        stored, state=ORDERS.mapper.transcoder.encode({**state, "class_version": 2})
    )

    reloaded = ORDERS.mapper.to_domain_event(old)
    assert isinstance(reloaded, Order.Quoted)
    assert (reloaded.previous_hash, reloaded.event_hash) == (None, None)
    order = reloaded.mutate(None)
    assert isinstance(order, Order)
    order.confirm(Side.BUY, None, Cause(CUSTOMER, UUID(int=99), T0))
    confirmed = order.pending_events[-1]
    assert isinstance(confirmed, Order.Confirmed)
    assert confirmed.previous_hash is None
    assert confirmed.event_hash == event_digest(confirmed)


# ---------------------------------------------------------------- checkpoints


@given(st.lists(st.integers(1, 500), unique=True).map(sorted))
def test_notification_ids_survive_their_ranges(ids: list[int]) -> None:
    assert ids_in(id_ranges(ids)) == ids


def leaves(count: int, start: int = 1) -> list[Leaf]:
    return [
        Leaf(n, UUID(int=n), 1, f"{n:064x}", chained=n % 2 == 0)
        for n in range(start, start + count)
    ]


def test_checkpoints_chain_and_cover_their_range() -> None:
    first = next_checkpoint(None, coverage_of(leaves(3), 3), T0)
    second = next_checkpoint(first, coverage_of(leaves(2, start=4), 5), T0)

    assert (first.sequence, first.after_id, first.last_id, first.previous_hash) == (1, 0, 3, None)
    assert (second.sequence, second.after_id, second.last_id) == (2, 3, 5)
    assert second.previous_hash == first.digest()
    assert (first.notification_ids, first.event_count, first.chain_start) == ("1-3", 3, 2)
    assert second.chain_start == 2


def test_a_checkpoints_hash_covers_every_field() -> None:
    checkpoint = next_checkpoint(None, coverage_of(leaves(3), 3), T0)
    changes: dict[str, Any] = {
        "sequence": 2,
        "after_id": 1,
        "last_id": 4,
        "event_count": 2,
        "notification_ids": "1-2",
        "events_digest": "0" * 64,
        "chain_start": 3,
        "previous_hash": "1" * 64,
        "written_at": T0 + timedelta(seconds=1),
    }
    assert set(changes) == {f.name for f in dataclasses.fields(checkpoint)}
    for name, value in changes.items():
        assert dataclasses.replace(checkpoint, **{name: value}).digest() != checkpoint.digest()


def test_a_ranges_digest_depends_on_each_leaf_and_their_order() -> None:
    some = leaves(3)
    reference = coverage_of(some, 3).events_digest

    assert coverage_of(list(reversed(some)), 3).events_digest != reference
    assert coverage_of(some[:2], 3).events_digest != reference
    altered = [some[0], dataclasses.replace(some[1], digest="f" * 64), some[2]]
    assert coverage_of(altered, 3).events_digest != reference
