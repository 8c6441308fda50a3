"""`otc audit verify` on the real PostgreSQL: orders written through the engine verify, and an
event altered, deleted or written as if from before the chain, or a checkpoint altered, straight
in PostgreSQL, makes it fail naming what was touched."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import psycopg
import pytest

from domain.order import Actor, ActorKind, Cause, Order, QuoteTerms, Side
from services.command_client import CommandClient
from services.engine.event_store import open_orders
from services.settings import Settings
from tests.integration.audit import (
    BROKEN,
    REFUSED,
    Json,
    complete_buys,
    edit_state,
    execute,
    notification_of,
    otc_audit,
    output,
    put_state,
    rehash,
    stored_count,
    stored_state,
)
from tests.support import Customer, Orderer, eventually, running
from tests.unit.strategies import LIMITS

pytestmark = pytest.mark.integration


async def verified(settings: Settings, *args: str) -> Json:
    report: Json = output(await otc_audit(settings, "verify", *args))
    assert report["ok"], report
    return report


async def broken(settings: Settings, *args: str) -> Json:
    report: Json = output(await otc_audit(settings, "verify", *args), BROKEN)
    assert not report["ok"]
    return report


async def test_a_busy_history_verifies_and_an_edited_event_is_named(
    client: CommandClient,
    customer: Customer,
    otc_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    orders = await complete_buys(client, customer, 12)
    assert stored_count(otc_settings) == 60  # the redelivered commands appended nothing
    written = output(await otc_audit(otc_settings, "checkpoint"))
    tail = Orderer(customer.id)
    quote = tail.quote(Side.BUY, customer.account, customer.wallet, "50.00")
    assert (await client.send(quote, timeout=30)).ok

    report = await verified(otc_settings)
    assert (report["chained"], report["unchained"], report["orders"]) == (61, 0, 13)
    assert report["checkpoints"] == len(written) >= 1
    assert report["afterLastCheckpoint"] == 1
    assert report["head"]["hash"] == written[-1]["hash"]

    victim = orders[4].order_id
    position = edit_state(otc_settings, victim, 3, f'"debit-{victim}"', '"debit-elsewhere"')

    for scope in ((), (str(victim),)):
        first = (await broken(otc_settings, *scope))["firstBreak"]
        assert (first["orderId"], first["version"], first["notificationId"]) == (
            str(victim),
            3,
            position,
        )
        assert first["problem"] == "its stored data does not match its hash"
        assert first["expected"] != first["found"]
    others = await otc_audit(otc_settings, "verify", str(tail.order_id))
    assert output(others)["ok"]  # its one event is after the last checkpoint: not involved

    edit_state(otc_settings, tail.order_id, 1, '"50.00"', '"5000.00"')
    with caplog.at_level(logging.ERROR, logger="services.audit.checkpoints"):
        output(await otc_audit(otc_settings, "checkpoint"))
    assert f"audit: order {tail.order_id} version 1" in caplog.text


async def test_the_projector_checkpoints_the_log_as_it_grows(
    client: CommandClient, customer: Customer, otc_settings: Settings
) -> None:
    settings = otc_settings.model_copy(update={"audit_checkpoint_seconds": 0.5})
    with running("services.projector", settings, "projector: following"):
        orders = await complete_buys(client, customer, 2)
        newest = notification_of(settings, orders[-1].order_id, 5)
        await eventually(lambda: checkpointed_up_to(settings) >= newest, timeout=30)
        later = await complete_buys(client, customer, 1)
        newest = notification_of(settings, later[-1].order_id, 5)
        await eventually(lambda: checkpointed_up_to(settings) >= newest, timeout=30)

    report = await verified(settings)
    assert report["checkpoints"] >= 2
    assert report["afterLastCheckpoint"] == 0


def checkpointed_up_to(settings: Settings) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        exists = conn.execute("SELECT to_regclass('audit_checkpoints')").fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = conn.execute("SELECT coalesce(max(last_id), 0) FROM audit_checkpoints").fetchone()
    return 0 if row is None else int(row[0])


async def test_a_deleted_event_is_named_by_its_order_or_by_the_checkpoint_over_it(
    client: CommandClient, customer: Customer, otc_settings: Settings
) -> None:
    orders = await complete_buys(client, customer, 4)
    output(await otc_audit(otc_settings, "checkpoint"))
    middle, newest = orders[1].order_id, orders[2].order_id
    newest_position = notification_of(otc_settings, newest, 5)

    deleted = "DELETE FROM orders_events WHERE originator_id = %s AND originator_version = %s"
    assert execute(otc_settings, deleted, (middle, 2)) == 1
    assert execute(otc_settings, deleted, (newest, 5)) == 1

    report = await broken(otc_settings)
    assert report["firstBreak"]["orderId"] == str(middle)
    assert report["firstBreak"]["version"] == 3
    assert report["firstBreak"]["problem"] == "version 2 of this order is missing"
    problems = [b["problem"] for b in report["breaks"]]
    assert f"notification {newest_position}, which it covered, is gone" in problems
    assert not any(b.get("orderId") == str(newest) for b in report["breaks"])


async def test_an_altered_checkpoint_fails_and_a_rewritten_history_fails_its_anchor(
    client: CommandClient, customer: Customer, otc_settings: Settings
) -> None:
    orders = await complete_buys(client, customer, 3)
    first = output(await otc_audit(otc_settings, "checkpoint"))[-1]
    await complete_buys(client, customer, 1)
    output(await otc_audit(otc_settings, "checkpoint"))
    anchor = f"{first['sequence']}:{first['hash']}"
    await verified(otc_settings, "--anchor", anchor)

    count = "UPDATE audit_checkpoints SET event_count = %s WHERE sequence = 1"
    execute(otc_settings, count, (first["eventCount"] - 1,))
    altered = (await broken(otc_settings))["firstBreak"]
    assert (altered["checkpoint"], altered["problem"]) == (
        1,
        "its stored fields do not match its hash",
    )
    execute(otc_settings, count, (first["eventCount"],))
    await verified(otc_settings)

    # An intruder who knows the rules edits an event and recomputes its hash...
    victim = orders[0].order_id
    edit_state(otc_settings, victim, 2, '"max_slippage_bps":null', '"max_slippage_bps":5000')
    before = stored_state(otc_settings, victim, 1)["event_hash"]
    hashes = [rehash(otc_settings, victim, 2, before)]
    problems = breaks_of(await broken(otc_settings))
    assert (str(victim), 3, None, "its previous_hash does not match version 2's hash") in problems
    assert (None, None, 1, first_range_differs(first)) in problems

    # ... then the rest of the order's chain: only the checkpoint over it still objects ...
    for version in (3, 4, 5):
        hashes.append(rehash(otc_settings, victim, version, hashes[-1]))
    assert breaks_of(await broken(otc_settings)) == {(None, None, 1, first_range_differs(first))}

    # ... then rewrites the checkpoints too: only a hash kept outside the database catches it.
    execute(otc_settings, "DELETE FROM audit_checkpoints")
    output(await otc_audit(otc_settings, "checkpoint"))
    await verified(otc_settings)
    anchored = await broken(otc_settings, "--anchor", anchor)
    assert breaks_of(anchored) == {(None, None, 1, "it does not hash to the anchor kept outside")}


def breaks_of(report: Json) -> set[tuple[object, ...]]:
    return {
        (b.get("orderId"), b.get("version"), b.get("checkpoint"), b["problem"])
        for b in report["breaks"]
    }


def first_range_differs(checkpoint: Json) -> str:
    return f"the events of notifications 1-{checkpoint['lastId']} no longer hash to its digest"


async def test_events_from_before_the_chain_are_counted_unchained_and_one_after_it_breaks(
    client: CommandClient, customer: Customer, otc_settings: Settings
) -> None:
    old = await stored_before_the_chain(otc_settings, customer)
    assert (await client.send(Orderer(customer.id, old).confirm(Side.BUY), timeout=30)).ok
    orders = await complete_buys(client, customer, 2)

    report = await verified(otc_settings)
    assert (report["unchained"], report["chained"]) == (1, 11)
    assert (await verified(otc_settings, str(old)))["unchained"] == 1
    assert stored_state(otc_settings, old, 2)["previous_hash"] is None

    newest = orders[1].order_id
    state = stored_state(otc_settings, newest, 1)
    del state["event_hash"], state["previous_hash"]
    put_state(otc_settings, newest, 1, {**state, "class_version": 2})

    first = (await broken(otc_settings))["firstBreak"]
    assert (first["orderId"], first["version"]) == (str(newest), 1)
    assert first["problem"].startswith("an unchained event after the chain began")
    refused = await otc_audit(otc_settings, "verify", str(uuid4()))
    assert refused.exit_code == REFUSED


async def stored_before_the_chain(settings: Settings, customer: Customer) -> UUID:
    """A quoted order saved, then rewritten as the engine stored events before the chain
    existed (class version 2, no hashes); its id."""
    now = datetime.now(UTC)
    order = Order.request_quote(
        order_id=uuid4(),
        customer_id=customer.id,
        side=Side.BUY,
        source_id=customer.account,
        destination_id=customer.wallet,
        source_amount=Decimal("100.00"),
        limits=LIMITS,
        terms=QuoteTerms(Decimal("1.08"), Decimal("0.50"), now + timedelta(minutes=5), None),
        cause=Cause(Actor(ActorKind.CUSTOMER, str(customer.id)), uuid4(), now),
    )
    store = open_orders(settings)
    try:
        store.save(order)
    finally:
        store.close()
    state = stored_state(settings, order.id, 1)
    del state["event_hash"], state["previous_hash"]
    put_state(settings, order.id, 1, {**state, "class_version": 2})
    return order.id
