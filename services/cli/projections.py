"""`otc projections rebuild order-list`: the `order_list` view rebuilt from zero.

The view and its tracking are emptied in one transaction; then the whole notification log, up to
its end as of the start, is read in pages and applied through the projection's own code, one
transaction per page (rows and tracking together). A projector started afterwards resumes from
where the rebuild stopped. The rebuild holds the view's writer lock, so it refuses to start while
a projector runs, and a standby projector waits until it is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from time import perf_counter
from typing import Annotated

import psycopg
import typer
from eventsourcing.persistence import PersistenceError, Tracking
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from projections.order_list import OrderListProjection, OrderListView
from services.engine.event_store import Orders, open_orders
from services.projector import open_order_list, take_writer_lock
from services.settings import Settings

projections_app = typer.Typer(
    no_args_is_help=True, help="Read models built from the event store, and their rebuild."
)

EXIT_BUSY = 2
EXIT_UNAVAILABLE = 1

OnPage = Callable[[int, int], None]
"""Called with (position reached, last position to reach) before the first page and after each."""


@dataclass(frozen=True)
class RebuildReport:
    events: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def rebuild_order_list(
    orders: Orders,
    view: OrderListView,
    *,
    page_size: int = 1000,
    on_page: OnPage | None = None,
) -> RebuildReport:
    """Empty the view, then apply every notification up to the log's current end.

    The caller makes sure nothing else writes the view meanwhile (the writer lock)."""
    projection = OrderListProjection(view=view)
    started = perf_counter()
    view.reset()
    end = orders.recorder.max_notification_id() or 0
    position, events = 0, 0
    if on_page is not None:
        on_page(position, end)
    while position < end:
        notifications = orders.recorder.select_notifications(
            start=position, limit=page_size, stop=end, inclusive_of_start=False
        )
        if not notifications:
            break
        projection.process_page(
            [(orders.mapper.to_domain_event(n), Tracking(orders.name, n.id)) for n in notifications]
        )
        position = notifications[-1].id
        events += len(notifications)
        if on_page is not None:
            on_page(position, end)
    return RebuildReport(events=events, position=position, seconds=perf_counter() - started)


class ReadModel(StrEnum):
    ORDER_LIST = "order-list"


@projections_app.command("rebuild")
def rebuild(
    name: Annotated[ReadModel, typer.Argument(help="The read model to rebuild.")],
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=100_000, help="Notifications per transaction.")
    ] = 1000,
) -> None:
    """Rebuild a read model from zero: empty it and its tracking in one transaction, then replay
    the whole notification log through its projection, with a progress bar.

    Stop the projector first: the rebuild takes the view's writer lock and refuses to start
    (exit code 2) while a projector holds it. Exit code 1 when the database is unreachable.
    """
    settings = Settings()
    try:
        report = _rebuild(name, settings, page_size)
    except (psycopg.OperationalError, PersistenceError) as error:
        typer.echo(f"could not rebuild {name.value}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    typer.echo(
        f"{name.value} rebuilt: {report.events} events up to position {report.position}"
        f" in {report.seconds:.2f} s ({report.events_per_second:.0f} events/s)"
    )


def _rebuild(name: ReadModel, settings: Settings, page_size: int) -> RebuildReport:
    with psycopg.connect(settings.conninfo(), autocommit=True) as lock_conn:
        if not take_writer_lock(lock_conn):
            typer.echo(
                f"a projector (or another rebuild) is writing {name.value}: stop it first",
                err=True,
            )
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
