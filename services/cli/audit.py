"""`otc audit ...`: any order's history from the event store, its state at any point, an export
of the log, re-publishing a range of it to Kafka for downstream re-sync (DESIGN.md 8), and the
proof that the stored history was not altered: `verify` and `checkpoint` (services/audit/).

These read the event store directly and show everything, server-side references included:
they are for operators and auditors on the platform's side. Exit codes: 1 when verification
finds a broken link (or the database is unreachable), 2 for a refused request (an order that
does not exist, a time without a zone, an anchor that is not SEQUENCE:HASH).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated
from uuid import UUID

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from domain.order import Order
from domain.views import OrderView
from services import kafka
from services.audit.checkpoints import CheckpointStore
from services.audit.export import ExportFilter, exported, record, to_read, write_lines
from services.audit.records import StoredLog
from services.audit.report import Anchor, verify_log, verify_order
from services.cli.on_store import EXIT_REFUSED, fail
from services.engine.event_store import Orders, open_orders
from services.relay.relay import envelope_of, message_of
from services.settings import Settings

audit_app = typer.Typer(no_args_is_help=True, help="Audit the event store.")

PAGE = 1000
EXIT_BROKEN = 1


def moment(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time with its zone (`Z` or an offset); a time without one is refused."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} is not an ISO 8601 time: {text!r}", EXIT_REFUSED)
    if parsed.utcoffset() is None:
        fail(f"{option} needs a zone (Z or an offset such as +01:00): {text!r}", EXIT_REFUSED)
    return parsed


@audit_app.command("history")
def history(order_id: UUID) -> None:
    """Every event of one order: version, time, actor, command id, hashes, data (JSON lines)."""
    orders = open_orders(Settings())
    try:
        events = list(orders.events.get(order_id))
    finally:
        orders.close()
    if not events:
        fail(f"order {order_id} not found", EXIT_REFUSED)
    for event in events:
        typer.echo(json.dumps(record(event)))


@audit_app.command("state")
def state(
    order_id: UUID,
    version: Annotated[int | None, typer.Option(help="the state after this version")] = None,
    at: Annotated[
        str | None, typer.Option(help="the state at this time (ISO 8601 with a zone)")
    ] = None,
) -> None:
    """The order as it was after version N, or at a time: after every event up to that time
    (the public view plus its version)."""
    if version is not None and at is not None:
        fail("give --version or --at, not both", EXIT_REFUSED)
    when = moment(at, "--at")
    orders = open_orders(Settings())
    try:
        if when is not None:
            events = [e for e in orders.events.get(order_id) if isinstance(e, Order.Event)]
            before = itertools.takewhile(lambda e: e.timestamp <= when, events)
            version = max((e.originator_version for e in before), default=0)
        order = orders.order(order_id, version=version) if version != 0 else None
    finally:
        orders.close()
    if order is None:
        fail(f"order {order_id} has no state then", EXIT_REFUSED)
    typer.echo(
        json.dumps({"version": order.version, "order": OrderView.of(order).public_json()}, indent=2)
    )


@audit_app.command("export")
def export(
    order: Annotated[list[UUID] | None, typer.Option(help="only this order (repeatable)")] = None,
    customer: Annotated[UUID | None, typer.Option(help="only this customer's events")] = None,
    since: Annotated[str | None, typer.Option(help="events at or after (ISO 8601, zone)")] = None,
    until: Annotated[str | None, typer.Option(help="events before (ISO 8601, zone)")] = None,
    start: Annotated[int, typer.Option("--from", "--start", help="first notification id")] = 1,
    stop: Annotated[int | None, typer.Option("--to", "--stop", help="last notification id")] = None,
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    progress: Annotated[
        bool | None, typer.Option(help="a progress bar on stderr (default: on a terminal)")
    ] = None,
) -> None:
    """The log, or the part the filters keep, one JSON line per event in log order, streamed;
    a summary line on stderr at the end."""
    wanted = ExportFilter(
        order_ids=tuple(order or ()),
        customer_id=customer,
        since=moment(since, "--since"),
        until=moment(until, "--until"),
        after=start - 1,
        upto=stop,
    )
    orders = open_orders(Settings())
    with contextlib.ExitStack() as stack:
        stack.callback(orders.close)
        out: IO[str] = sys.stdout if output is None else stack.enter_context(output.open("w"))
        err = Console(stderr=True)
        if progress is None:
            progress = err.is_terminal and not (output is None and sys.stdout.isatty())
        bar = Progress(
            TextColumn("[bold]export"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not progress,
        )
        with bar:
            task = bar.add_task("export", total=to_read(orders, wanted) if progress else None)
            written = write_lines(exported(orders, wanted, lambda: bar.advance(task)), out)
        read = int(bar.tasks[0].completed)
    typer.echo(json.dumps({"exported": written, "read": read}), err=True)


@audit_app.command("republish")
def republish(
    start: Annotated[int, typer.Option("--from", "--start", help="first notification id")],
    stop: Annotated[int, typer.Option("--to", "--stop", help="last notification id")],
) -> None:
    """Publish a range of the log to the events topic again, with the same eventIds: consumers
    see it again and dedupe by eventId (or by the order's own state)."""
    settings = Settings()
    count = asyncio.run(republish_range(settings, start, stop))
    typer.echo(
        json.dumps(
            {"republished": count, "start": start, "stop": stop, "topic": settings.events_topic}
        )
    )


async def republish_range(settings: Settings, start: int, stop: int) -> int:
    orders = open_orders(settings)
    producer = kafka.producer(settings, client_id="otc-audit-republish")
    await producer.start()
    count = 0
    try:
        position = start
        while position <= stop:
            page = await asyncio.to_thread(
                orders.recorder.select_notifications,
                start=position,
                limit=PAGE,
                stop=stop,
            )
            deliveries = []
            for notification in page:
                envelope = envelope_of(orders, notification)
                if envelope is not None:
                    key, value, headers = message_of(envelope)  # as the relay sent it
                    deliveries.append(
                        await producer.send(settings.events_topic, value, key=key, headers=headers)
                    )
            await asyncio.gather(*deliveries)
            count += len(deliveries)
            if len(page) < PAGE:
                break
            position = page[-1].id + 1
    finally:
        await producer.stop()
        orders.close()
    return count


@contextmanager
def checkpoints() -> Iterator[tuple[Settings, Orders, CheckpointStore]]:
    """The settings, the event store and the audit's checkpoint table, for one command."""
    settings = Settings()
    orders = open_orders(settings)
    try:
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            store = CheckpointStore(conn)
            store.setup()
            yield settings, orders, store
    finally:
        orders.close()


@audit_app.command("verify")
def verify(
    order_id: Annotated[
        UUID | None, typer.Argument(help="one order (default: the whole log)")
    ] = None,
    anchor: Annotated[
        list[str] | None,
        typer.Option(help="SEQUENCE:HASH of a checkpoint kept outside the database (repeatable)"),
    ] = None,
) -> None:
    """Recompute every event's hash, follow every order's chain and every checkpoint, and
    report the first broken link (order, version, notification id, what differs). Exit 1 on
    any break."""
    try:
        anchors = [Anchor.parse(text) for text in anchor or ()]
    except ValueError as error:
        fail(str(error), EXIT_REFUSED)
    with checkpoints() as (_, orders, store):
        recorded = store.all()
        stored = StoredLog(orders)
        if order_id is None:
            report = verify_log(stored, recorded, anchors)
        else:
            found = verify_order(stored, recorded, order_id, anchors)
            if found is None:
                fail(f"order {order_id} not found", EXIT_REFUSED)
            report = found
    typer.echo(json.dumps(report.as_json(), indent=2))
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Write checkpoints now over every event not yet under one (the projector does it every
    OTC_AUDIT_CHECKPOINT_SECONDS); print them."""
    with checkpoints() as (settings, orders, store):
        written = store.catch_up(
            StoredLog(orders), lambda: datetime.now(UTC), settings.audit_checkpoint_max_events
        )
    typer.echo(
        json.dumps(
            [
                {
                    "sequence": c.sequence,
                    "afterId": c.after_id,
                    "lastId": c.last_id,
                    "eventCount": c.event_count,
                    "hash": c.digest(),
                }
                for c in written
            ],
            indent=2,
        )
    )
