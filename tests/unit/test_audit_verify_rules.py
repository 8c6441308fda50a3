"""The rules of `otc audit verify` (services/audit/verify.py) over what the command processor
stores on the in-memory event store: batches of many orders saved in one transaction, commands
redelivered, a conflicting batch redone one command at a time; then the stored bytes altered.

The records are read from the in-memory store's notification log and examined with the
application's own mapper, exactly as services/audit/records.py reads PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from uuid import UUID

from domain.hash_chain import coverage_of, next_checkpoint
from domain.order import Side
from services.audit.records import Examined, StoredRecord, examine
from services.audit.verify import Break, Chains, checkpoint_range
from tests.unit.strategies import T0
from tests.unit.test_command_processor import Engine


def stored_records(engine: Engine) -> list[StoredRecord]:
    notifications = engine.orders.recorder.select_notifications(start=1, limit=10_000)
    return [
        StoredRecord(n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
        for n in notifications
    ]


def check(engine: Engine, records: list[StoredRecord]) -> tuple[Chains, list[Break]]:
    chains = Chains()
    breaks = [b for r in records for b in chains.see(examine(r, engine.orders.mapper))]
    return chains, breaks


def edited(record: StoredRecord, old: str, new: str) -> StoredRecord:
    text = record.state.decode()
    assert old in text
    return dataclasses.replace(record, state=text.replace(old, new, 1).encode())


async def busy(engine: Engine) -> list[UUID]:
    """Ten buys through three batches, each batch every order at once, the last one twice;
    a conflict on the second batch makes the processor redo it one command at a time."""
    orders = [engine.orderer() for _ in range(10)]
    await engine.send(*(engine.buy(order) for order in orders))
    engine.orders.conflicts = 1
    await engine.send(*(order.confirm(Side.BUY) for order in orders))
    debits = [order.debited(reference=f"debit-{n}") for n, order in enumerate(orders)]
    await engine.send(*debits)
    await engine.send(*debits)
    return [order.order_id for order in orders]


async def test_batches_redeliveries_and_redone_conflicts_leave_every_chain_whole() -> None:
    engine = Engine()
    order_ids = await busy(engine)

    records = stored_records(engine)
    chains, breaks = check(engine, records)

    assert breaks == []
    assert chains.chained == len(records) == 30
    assert {i: h.version for i, h in chains.heads.items()} == dict.fromkeys(order_ids, 3)


async def test_an_edited_event_is_named_and_its_successor_still_links() -> None:
    engine = Engine()
    await busy(engine)
    records = stored_records(engine)
    target = next(r for r in records if r.originator_version == 2)

    altered = [edited(r, '"side":"buy"', '"side":"sel"') if r == target else r for r in records]
    _, breaks = check(engine, altered)

    assert [(b.order_id, b.version, b.notification_id) for b in breaks] == [
        (target.originator_id, 2, target.notification_id)
    ]
    assert breaks[0].problem == "its stored data does not match its hash"


async def test_an_edit_with_its_hash_recomputed_breaks_the_next_link() -> None:
    engine = Engine()
    await busy(engine)
    records = stored_records(engine)
    target = next(r for r in records if r.originator_version == 2)
    forged = edited(target, '"max_slippage_bps":null', '"max_slippage_bps":9999')
    state = json.loads(forged.state)
    state["event_hash"] = examine(forged, engine.orders.mapper).digest
    forged = dataclasses.replace(forged, state=json.dumps(state).encode())

    _, breaks = check(engine, [forged if r == target else r for r in records])

    assert [(b.order_id, b.version) for b in breaks] == [(target.originator_id, 3)]
    assert breaks[0].problem == "its previous_hash does not match version 2's hash"


async def test_a_missing_event_and_an_unchained_one_after_the_chain_are_breaks() -> None:
    engine = Engine()
    await busy(engine)
    records = stored_records(engine)
    gone = next(r for r in records if r.originator_version == 2)
    last = records[-1]
    unchained = edited(last, '"class_version":3', '"class_version":2')

    _, breaks = check(engine, [r for r in records if r not in (gone, last)] + [unchained])

    assert [(b.order_id, b.version, b.problem) for b in breaks] == [
        (gone.originator_id, 3, "version 2 of this order is missing"),
        (
            last.originator_id,
            last.originator_version,
            "an unchained event after chained ones of its order",
        ),
    ]


async def test_a_checkpoint_names_a_covered_event_that_is_gone_or_altered() -> None:
    engine = Engine()
    await busy(engine)
    records = stored_records(engine)

    def leaves(some: list[StoredRecord]) -> list[Examined]:
        return [examine(r, engine.orders.mapper) for r in some]

    whole = leaves(records)
    checkpoint = next_checkpoint(
        None, coverage_of([e.leaf for e in whole], records[-1].notification_id), T0
    )
    assert checkpoint_range(checkpoint, [e.leaf for e in whole], None) == []

    newest = records[-1]
    without = [e.leaf for e in whole if e.record != newest]
    assert [b.problem for b in checkpoint_range(checkpoint, without, None)] == [
        f"notification {newest.notification_id}, which it covered, is gone"
    ]
    altered = leaves(
        [edited(r, '"side":"buy"', '"side":"sel"') if r == newest else r for r in records]
    )
    assert [b.problem for b in checkpoint_range(checkpoint, [e.leaf for e in altered], None)] == [
        f"the events of notifications 1-{newest.notification_id} no longer hash to its digest"
    ]
