"""Helpers of the audit's integration tests: `otc audit ...` run in-process against a test's
own database and topics, orders driven through the engine the way the system sends commands
(many orders in one batch, some commands delivered twice), and direct edits of what
PostgreSQL stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from typer.testing import CliRunner, Result

from domain.commands import Command
from domain.hash_chain import stored_digest
from domain.order import Side
from services.cli import app
from services.command_client import CommandClient
from services.engine.event_store import open_orders
from services.settings import Settings
from tests.support import Customer, Orderer, stored_order_events

Json = dict[str, Any]
BROKEN = 1
REFUSED = 2


async def otc_audit(settings: Settings, *args: str) -> Result:
    """`otc audit ARGS` with these settings, in a thread (it runs event loops of its own)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, ["audit", *args], env=settings.to_env())


def output(result: Result, exit_code: int = 0) -> Any:  # noqa: ANN401 - a JSON document
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


async def complete_buys(client: CommandClient, customer: Customer, count: int) -> list[Orderer]:
    """`count` buys quoted, confirmed, debited, approved and paid out: each step sent for every
    order at once (the engine saves such a batch in one transaction), and the first three
    orders' commands of each step sent a second time (a redelivery appends nothing)."""
    orders = [Orderer(customer.id) for _ in range(count)]
    steps: list[Callable[[Orderer], Command]] = [
        lambda o: o.quote(Side.BUY, customer.account, customer.wallet, "100.00"),
        lambda o: o.confirm(Side.BUY),
        lambda o: o.debited(reference=f"debit-{o.order_id}"),
        lambda o: o.approve(),
        lambda o: o.paid_out(reference=f"payout-{o.order_id}"),
    ]
    for step in steps:
        commands = [step(order) for order in orders]
        replies = await client.send_all(commands, timeout=60)
        assert all(reply.ok for reply in replies), [r.error for r in replies if not r.ok]
        again = await client.send_all(commands[:3], timeout=60)
        assert [r.order for r in again] == [r.order for r in replies[:3]]
    return orders


def stored_count(settings: Settings) -> int:
    return len(stored_order_events(settings))


def execute(settings: Settings, statement: LiteralString, params: tuple[object, ...] = ()) -> int:
    """One statement straight into PostgreSQL, as an intruder with the database's password
    would; the number of rows it touched."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        return conn.execute(statement, params).rowcount


def notification_of(settings: Settings, order_id: UUID, version: int) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            "SELECT notification_id FROM orders_events"
            " WHERE originator_id = %s AND originator_version = %s",
            (order_id, version),
        ).fetchone()
    assert row is not None
    return int(row[0])


def edit_state(settings: Settings, order_id: UUID, version: int, old: str, new: str) -> int:
    """Replace text in one stored event's state bytes; its notification id."""
    touched = execute(
        settings,
        "UPDATE orders_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
        " %s, %s), 'UTF8') WHERE originator_id = %s AND originator_version = %s"
        " AND position(convert_to(%s, 'UTF8') in state) > 0",
        (old, new, order_id, version, old),
    )
    assert touched == 1, f"{old!r} is not in version {version} of {order_id}"
    return notification_of(settings, order_id, version)


def stored_state(settings: Settings, order_id: UUID, version: int) -> Json:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            "SELECT state FROM orders_events WHERE originator_id = %s AND originator_version = %s",
            (order_id, version),
        ).fetchone()
    assert row is not None
    state: Json = json.loads(bytes(row[0]))
    return state


def put_state(settings: Settings, order_id: UUID, version: int, state: Json) -> None:
    execute(
        settings,
        "UPDATE orders_events SET state = %s WHERE originator_id = %s AND originator_version = %s",
        (json.dumps(state).encode(), order_id, version),
    )


def rehash(settings: Settings, order_id: UUID, version: int, previous: str | None) -> str:
    """What an intruder who knows the rules would do after an edit: set the event's
    previous_hash and recompute its own hash from its stored fields; its new hash."""
    store = open_orders(settings)
    try:
        transcoder = store.mapper.transcoder
        with psycopg.connect(settings.conninfo()) as conn:
            row = conn.execute(
                "SELECT topic, state FROM orders_events"
                " WHERE originator_id = %s AND originator_version = %s",
                (order_id, version),
            ).fetchone()
        assert row is not None
        state = transcoder.decode(bytes(row[1]))
        state["previous_hash"] = previous
        state["event_hash"] = stored_digest(str(row[0]), order_id, version, state)
        execute(
            settings,
            "UPDATE orders_events SET state = %s"
            " WHERE originator_id = %s AND originator_version = %s",
            (transcoder.encode(state), order_id, version),
        )
    finally:
        store.close()
    new_hash: str = state["event_hash"]
    return new_hash
