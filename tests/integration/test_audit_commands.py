"""`otc audit state --at`, `export` and `republish` against the real stack: the engine writing
to PostgreSQL, and for republish the relay and both workers on Kafka with the sandboxes."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.commands import Command
from domain.order import Side, Status
from services.cli.check import reconcile_report
from services.command_client import CommandClient
from services.gateway.readiness import KafkaLags
from services.settings import Settings
from tests.integration.audit import REFUSED, Json, otc_audit, output
from tests.integration.money import MoneySystem, money_system
from tests.support import (
    ROOT,
    Customer,
    Orderer,
    eventually,
    make_customer,
    read_topic,
    stored_order_events,
)

pytestmark = pytest.mark.integration


def lines(text: str) -> list[Json]:
    return [json.loads(line) for line in text.splitlines() if line]


async def history(settings: Settings, order: Orderer) -> list[Json]:
    return lines((await otc_audit(settings, "history", str(order.order_id))).stdout)


async def test_state_at_a_time_is_the_order_after_every_event_up_to_it(
    client: CommandClient, customer: Customer, otc_settings: Settings
) -> None:
    order = Orderer(customer.id)
    assert (await client.send(order.quote(Side.BUY, customer.account, customer.wallet, "80.00"))).ok
    await asyncio.sleep(0.5)
    assert (await client.send(order.confirm(Side.BUY))).ok
    quoted, confirmed = (
        datetime.fromisoformat(e["occurredAt"]) for e in await history(otc_settings, order)
    )
    between = quoted + (confirmed - quoted) / 2

    async def state_at(moment: str) -> Any:  # noqa: ANN401 - a JSON document
        return output(await otc_audit(otc_settings, "state", str(order.order_id), "--at", moment))

    assert quoted < between < confirmed
    then = await state_at(between.isoformat())
    assert (then["version"], then["order"]["status"]) == (1, "quoted")
    utc_z = await state_at(confirmed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert (utc_z["version"], utc_z["order"]["status"]) == (2, "debit_pending")
    elsewhere = await state_at(between.astimezone(timezone(timedelta(hours=-5))).isoformat())
    assert elsewhere["version"] == 1
    before = await otc_audit(
        otc_settings,
        "state",
        str(order.order_id),
        "--at",
        (quoted - timedelta(seconds=1)).isoformat(),
    )
    assert before.exit_code == REFUSED
    naive = await otc_audit(
        otc_settings, "state", str(order.order_id), "--at", "2030-01-01T00:00:00"
    )
    assert naive.exit_code == REFUSED
    assert "needs a zone" in naive.stderr


async def test_export_streams_json_lines_filtered_by_order_customer_time_and_range(
    client: CommandClient, customer: Customer, otc_settings: Settings, tmp_path: Path
) -> None:
    other = await make_customer(otc_settings, "Bea")
    first, second, third = Orderer(customer.id), Orderer(customer.id), Orderer(other.id)
    for order, who in ((first, customer), (second, customer), (third, other)):
        assert (await client.send(order.quote(Side.BUY, who.account, who.wallet, "90.00"))).ok
    await asyncio.sleep(0.3)
    confirms = await client.send_all([first.confirm(Side.BUY), second.confirm(Side.BUY)])
    assert all(reply.ok for reply in confirms)

    everything = await otc_audit(otc_settings, "export")
    exported = lines(everything.stdout)
    assert [e["position"] for e in exported] == sorted(e["position"] for e in exported)
    assert len(exported) == len(stored_order_events(otc_settings)) == 5
    assert json.loads(everything.stderr.splitlines()[-1]) == {"exported": 5, "read": 5}
    assert all(len(e["eventHash"]) == 64 for e in exported)

    async def exported_with(*args: str) -> list[tuple[str, int]]:
        result = await otc_audit(otc_settings, "export", *args)
        assert result.exit_code == 0, result.stderr
        return [(e["aggregateId"], e["version"]) for e in lines(result.stdout)]

    one, two, three = (str(o.order_id) for o in (first, second, third))
    assert await exported_with("--order", one) == [(one, 1), (one, 2)]
    assert sorted(await exported_with("--order", one, "--order", three)) == sorted(
        [(one, 1), (one, 2), (three, 1)]
    )
    assert await exported_with("--customer", str(other.id)) == [(three, 1)]
    quotes_done = max(
        datetime.fromisoformat(e["occurredAt"]) for e in exported if e["version"] == 1
    )
    since = (quotes_done + timedelta(microseconds=1)).isoformat()
    assert sorted(await exported_with("--since", since)) == sorted([(one, 2), (two, 2)])
    until = await exported_with("--until", since, "--customer", str(customer.id))
    assert sorted(until) == sorted([(one, 1), (two, 1)])
    positions = [e["position"] for e in exported]
    in_range = await exported_with("--from", str(positions[1]), "--to", str(positions[3]))
    assert in_range == [(e["aggregateId"], e["version"]) for e in exported[1:4]]

    target = tmp_path / "log.jsonl"
    assert (await otc_audit(otc_settings, "export", "--output", str(target))).stdout == ""
    assert target.read_text() == everything.stdout


def export_process(settings: Settings, target: Path, stderr: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI with a fixed interpreter
        [
            sys.executable,
            "-c",
            "from services.cli import main; main()",
            "audit",
            "export",
            "--output",
            str(target),
        ],
        cwd=ROOT,
        env={**os.environ, **settings.to_env(), "TERM": "xterm", "COLUMNS": "120"},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


async def test_export_shows_a_progress_bar_on_a_terminal_and_none_elsewhere(
    client: CommandClient, customer: Customer, otc_settings: Settings, tmp_path: Path
) -> None:
    orders = [Orderer(customer.id) for _ in range(4)]
    quotes: list[Command] = [
        o.quote(Side.BUY, customer.account, customer.wallet, "70.00") for o in orders
    ]
    assert all(r.ok for r in await client.send_all(quotes))

    leader, follower = pty.openpty()
    process = export_process(otc_settings, tmp_path / "on-terminal.jsonl", follower)
    os.close(follower)
    shown = await asyncio.to_thread(read_until_closed, leader)
    assert await asyncio.to_thread(process.wait, 60) == 0
    assert "export" in shown
    assert "4/4" in shown
    assert len((tmp_path / "on-terminal.jsonl").read_text().splitlines()) == 4

    piped = export_process(otc_settings, tmp_path / "piped.jsonl", subprocess.PIPE)
    _, errors = await asyncio.to_thread(piped.communicate, None, 60)
    assert [json.loads(line) for line in errors.decode().splitlines()] == [
        {"exported": 4, "read": 4}
    ]


def read_until_closed(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
async def system(otc_settings: Settings) -> AsyncIterator[MoneySystem]:
    async with money_system(otc_settings) as running:
        yield running


async def caught_up(settings: Settings) -> None:
    """Every worker has consumed the events topic to its end, and the engine its commands."""
    lags = KafkaLags(settings)
    groups = [
        (settings.eur_worker_group, settings.events_topic),
        (settings.chain_worker_group, settings.events_topic),
        (settings.engine_group, settings.commands_topic),
    ]
    try:

        async def all_zero() -> bool:
            return all([await lags.group_lag(g, t) == 0 for g, t in groups])

        await eventually(all_zero, timeout=60, interval=0.5)
    finally:
        await lags.close()


async def test_a_republished_range_is_seen_again_downstream_and_changes_nothing(
    system: MoneySystem,
) -> None:
    settings = system.settings
    customer = await system.customer(eur="1000.00")
    orders = [Orderer(customer.id) for _ in range(2)]
    async with CommandClient(settings) as client:
        for order in orders:
            assert (
                await client.send(
                    order.quote(Side.BUY, customer.account, customer.wallet, "100.00"), timeout=30
                )
            ).ok
            assert (await client.send(order.confirm(Side.BUY), timeout=30)).ok
            await system.settled_into(order.order_id, Status.PENDING_APPROVAL)
            assert (await client.send(order.approve(), timeout=30)).ok
    await system.settled([o.order_id for o in orders])
    stored = stored_order_events(settings)
    await eventually(lambda: published_ids(settings, len(stored)), timeout=30)
    await caught_up(settings)
    before = (
        stored_order_events(settings),
        await reconcile_report(settings),
        await system.eur_balance(customer.account),
    )

    first, last = await positions_of(settings, 2), await positions_of(settings, len(stored) - 1)
    republished = output(
        await otc_audit(settings, "republish", "--from", str(first), "--to", str(last))
    )
    assert republished["republished"] == len(stored) - 2

    records = await read_topic(settings, settings.events_topic)
    seen = Counter(json.loads(r.value)["eventId"] for r in records)
    assert sorted(seen.values()) == [1, 1] + [2] * (len(stored) - 2)
    by_id: dict[str, set[bytes]] = {}
    for r in records:
        by_id.setdefault(json.loads(r.value)["eventId"], set()).add(r.value)
    assert all(len(values) == 1 for values in by_id.values())  # the same bytes again
    headers: dict[str, set[tuple[tuple[str, bytes], ...]]] = {}
    for r in records:
        headers.setdefault(json.loads(r.value)["eventId"], set()).add(tuple(r.headers))
    assert all(len(kinds) == 1 for kinds in headers.values())  # and the relay's headers
    assert all(dict(next(iter(kinds))).get("command_id") for kinds in headers.values())
    await caught_up(settings)
    after = (
        stored_order_events(settings),
        await reconcile_report(settings),
        await system.eur_balance(customer.account),
    )
    assert after == before
    assert before[1]["reconciled"]
    assert before[1]["movementsBooked"] == 4


async def published_ids(settings: Settings, count: int) -> bool:
    return len(await read_topic(settings, settings.events_topic)) >= count


async def positions_of(settings: Settings, nth: int) -> int:
    """The notification id of the nth order event in the log (from 1)."""
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT notification_id FROM orders_events WHERE topic LIKE %s"
            " ORDER BY notification_id",
            ("%Order.%",),
        ).fetchall()
    return int(rows[nth - 1][0])
