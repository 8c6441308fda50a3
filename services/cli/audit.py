"""`otc audit ...`: any order's history from the event store, its state at any point, an export
of the whole log, and re-publishing a range of it to Kafka for downstream re-sync (DESIGN.md 8).

These read the event store directly and show everything, server-side references included:
they are for operators and auditors on the platform's side.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import typer

from domain.order import Order
from domain.views import OrderView
from services import kafka
from services.contracts import event_data
from services.engine.event_store import open_orders
from services.relay.relay import envelope_of
from services.settings import Settings

audit_app = typer.Typer(no_args_is_help=True, help="Audit the event store.")

PAGE = 1000


def record(event: Any, position: int | None = None) -> dict[str, Any]:  # noqa: ANN401 - any stored event
    entry: dict[str, Any] = {
        "aggregateId": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__qualname__,
        "occurredAt": event.timestamp.isoformat(),
    }
    if position is not None:
        entry["position"] = position
    if isinstance(event, Order.Event):
        entry["actor"] = {"kind": event.actor_kind, "id": event.actor_id}
        entry["commandId"] = str(event.command_id)
    entry["data"] = event_data(event)
    return entry


@audit_app.command("history")
def history(order_id: UUID) -> None:
    """Every event of one order: version, time, actor, command id, data (JSON lines)."""
    orders = open_orders(Settings())
    try:
        events = list(orders.events.get(order_id))
    finally:
        orders.close()
    if not events:
        typer.echo(f"order {order_id} not found", err=True)
        raise typer.Exit(2)
    for event in events:
        typer.echo(json.dumps(record(event)))


@audit_app.command("state")
def state(
    order_id: UUID,
    version: Annotated[int | None, typer.Option(help="the state after this version")] = None,
    at: Annotated[
        datetime | None, typer.Option(help="the state at this time (ISO 8601, with zone)")
    ] = None,
) -> None:
    """The order as it was after version N, or at a time (the public view plus its version)."""
    orders = open_orders(Settings())
    try:
        if at is not None:
            events = [
                e
                for e in orders.events.get(order_id)
                if isinstance(e, Order.Event) and e.timestamp <= at
            ]
            version = events[-1].originator_version if events else 0
        order = orders.order(order_id, version=version) if version != 0 else None
    finally:
        orders.close()
    if order is None:
        typer.echo(f"order {order_id} has no state then", err=True)
        raise typer.Exit(2)
    typer.echo(
        json.dumps({"version": order.version, "order": OrderView.of(order).public_json()}, indent=2)
    )


@audit_app.command("export")
def export(
    start: Annotated[int, typer.Option(help="first notification id")] = 1,
    stop: Annotated[int | None, typer.Option(help="last notification id")] = None,
) -> None:
    """The whole log (or a range of it), one JSON line per event, in order."""
    orders = open_orders(Settings())
    try:
        position = start
        while True:
            page = orders.recorder.select_notifications(start=position, limit=PAGE, stop=stop)
            for notification in page:
                sys.stdout.write(
                    json.dumps(record(orders.mapper.to_domain_event(notification), notification.id))
                    + "\n"
                )
            if len(page) < PAGE:
                break
            position = page[-1].id + 1
    finally:
        orders.close()


@audit_app.command("republish")
def republish(
    start: Annotated[int, typer.Option(help="first notification id")],
    stop: Annotated[int, typer.Option(help="last notification id")],
) -> None:
    """Publish a range of the log to the events topic again (consumers dedupe by eventId)."""
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
                    key = str(envelope.order_id).encode()
                    deliveries.append(
                        await producer.send(settings.events_topic, envelope.to_bytes(), key=key)
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
