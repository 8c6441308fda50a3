"""`otc projections rebuild order-list`: the `order_list` view rebuilt beside the live one and
swapped in (`services.projector.rebuild`), with a progress bar; the live list stays complete
and the projector keeps running throughout. It ends by comparing the rebuilt table with the one
it replaced, row for row."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import psycopg
import typer
from eventsourcing.persistence import PersistenceError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from services.engine.event_store import open_orders
from services.projector import open_order_list, take_rebuild_lock
from services.projector.rebuild import PAGE_SIZE, RebuildReport, rebuild_order_list
from services.settings import Settings

projections_app = typer.Typer(
    no_args_is_help=True, help="Read models built from the event store, and their rebuild."
)

EXIT_UNAVAILABLE = 1
EXIT_BUSY = 2
EXIT_ROWS_DIFFER = 3
DIFFERING_SHOWN = 20


class ReadModel(StrEnum):
    ORDER_LIST = "order-list"


@projections_app.command("rebuild")
def rebuild(
    name: Annotated[ReadModel, typer.Argument(help="The read model to rebuild.")],
    page_size: Annotated[
        int,
        typer.Option("--page-size", min=1, max=100_000, help="Notifications per transaction."),
    ] = PAGE_SIZE,
) -> None:
    """Rebuild a read model from the whole notification log into a new table beside the live
    one, then swap it in at the live projector's position, in one transaction that pauses the
    projector briefly; the live list is complete throughout. Prints events, seconds and
    events/s, then compares the rebuilt rows with the replaced ones.

    Exit codes: 0 rows equal (the replaced table is dropped); 3 rows differ (the differing order
    ids are printed, the replaced table is kept as order_list_previous); 2 another rebuild is
    running; 1 the database is unreachable or a lock could not be had.
    """
    settings = Settings()
    try:
        report = _rebuild(name, settings, page_size)
    except (psycopg.OperationalError, PersistenceError) as error:
        typer.echo(f"could not rebuild {name.value}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    typer.echo(
        f"{name.value} rebuilt: {report.events} events in {report.seconds:.2f} s"
        f" ({report.events_per_second:.0f} events/s; {report.cpu_seconds:.2f} s of CPU),"
        f" swapped in at position {report.position}"
        f" (projector paused {report.paused_seconds * 1000:.0f} ms)"
    )
    comparison = report.comparison
    if comparison.equal:
        typer.echo(f"rows equal: {comparison.rows}")
        return
    shown = ", ".join(str(order_id) for order_id in comparison.differing[:DIFFERING_SHOWN])
    more = len(comparison.differing) - DIFFERING_SHOWN
    typer.echo(
        f"rows differ: {len(comparison.differing)} of {comparison.rows}: {shown}"
        + (f" and {more} more" if more > 0 else "")
        + "; the replaced table is kept as order_list_previous"
    )
    raise typer.Exit(EXIT_ROWS_DIFFER)


def _rebuild(name: ReadModel, settings: Settings, page_size: int) -> RebuildReport:
    with psycopg.connect(settings.conninfo(), autocommit=True) as lock_conn:
        if not take_rebuild_lock(lock_conn):
            typer.echo(f"another rebuild of {name.value} is running", err=True)
            raise typer.Exit(EXIT_BUSY)
        orders = open_orders(settings)
        view = open_order_list(settings)
        try:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            ) as progress:
                task = progress.add_task(name.value, total=None)

                def show(position: int, end: int) -> None:
                    progress.update(task, completed=position, total=end)

                return rebuild_order_list(orders, view, page_size=page_size, on_page=show)
        finally:
            view.close()
            orders.close()
