"""The reconciliation's histories kept between the monitor's checks (services/cli/check.py,
KeptHistories): a refresh reads only the notifications after the last one read, folds only the
orders they name, and ends where a whole read would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from domain import commands as c
from domain.order import Side
from services.cli.check import KeptHistories
from services.engine.event_store import Orders
from tests.support import Orderer
from tests.unit.test_command_processor import Engine


def whole(orders: Orders) -> KeptHistories:
    kept = KeptHistories()
    kept.refresh(orders)
    return kept


def same(kept: KeptHistories, read_whole: KeptHistories) -> None:
    assert kept.position == read_whole.position
    assert kept.histories == read_whole.histories
    assert {i: o.version for i, o in kept.folded.items()} == {
        i: o.version for i, o in read_whole.folded.items()
    }
    assert {i: [asdict(e) for e in x] for i, x in kept.expected.items()} == {
        i: [asdict(e) for e in x] for i, x in read_whole.expected.items()
    }


async def advance(engine: Engine, order: Orderer, *steps: str) -> None:
    """A buy taken through `steps` (quote, confirm, debited, approve, paid), each accepted."""
    commands: dict[str, Callable[[], c.Command]] = {
        "quote": lambda: engine.buy(order),
        "confirm": lambda: order.confirm(Side.BUY),
        "debited": order.debited,
        "approve": order.approve,
        "paid": order.paid_out,
    }
    for step in steps:
        [reply] = await engine.send(commands[step]())
        assert reply.ok, reply.error


async def test_a_refresh_reads_only_what_came_since_and_ends_where_a_whole_read_would() -> None:
    engine = Engine()
    first, second, third = engine.orderer(), engine.orderer(), engine.orderer()
    await advance(engine, first, "quote", "confirm", "debited")
    await advance(engine, second, "quote", "confirm")
    kept = whole(engine.orders)
    before = kept.position

    await advance(engine, first, "approve", "paid")
    await advance(engine, third, "quote")
    changed = kept.refresh(engine.orders)

    assert changed == {first.order_id, third.order_id}
    assert kept.position > before
    same(kept, whole(engine.orders))
    assert [e.reference for e in kept.expected[first.order_id]] == [
        e.reference for e in whole(engine.orders).expected[first.order_id]
    ]
    assert len(kept.expected[first.order_id]) == 2  # the debit and the payout


async def test_a_refresh_with_nothing_new_changes_nothing() -> None:
    engine = Engine()
    order = engine.orderer()
    await advance(engine, order, "quote", "confirm")
    kept = whole(engine.orders)

    assert kept.refresh(engine.orders) == set()
    same(kept, whole(engine.orders))
