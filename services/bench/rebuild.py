"""`otc bench rebuild`: `otc projections rebuild order-list` at scale, beside live traffic.

It makes a database of its own on the running stack and fills its event store with complete
order lifecycles (`services.bench.order_mill`: five order events each, many in flight, nothing
else in the log); projects them into the live `order_list` through the projection's page path;
starts the real projector (`python -m services.projector`); then, while a writer keeps placing
orders and a reader keeps counting the live list, runs `otc projections rebuild order-list` in a
process of its own, as an operator would. It prints what the command printed (events, seconds,
events/s, CPU seconds, the projector's pause, the comparison), what the reader saw, and whether
the orders written after the swap reach the list. Nothing here is a test; it only prints figures.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import Tracking

from domain.order import Order, Status
from projections.order_list import OrderListProjection, OrderListView
from services.bench.order_mill import EVENTS_PER_ORDER, OrderMill
from services.bench.tools import scratch_database
from services.engine.event_store import Orders, open_orders
from services.projector import open_order_list
from services.projector.rebuild import order_events
from services.settings import Settings

PROJECT_PAGE = 10_000
LIVE_IN_FLIGHT = 20
"""Orders the writer keeps in flight during the rebuild: a tick every `LIVE_TICK_SECONDS`."""
LIVE_TICK_SECONDS = 0.2


@dataclass
class LiveTraffic:
    """What the writer and the reader did while the rebuild ran."""

    events_written: int = 0
    totals: list[int] = field(default_factory=list)
    slowest_read: float = 0.0

    @property
    def never_shrank(self) -> bool:
        return self.totals == sorted(self.totals)


def project(orders: Orders, live: OrderListView) -> int:
    """The whole log into the live view through the projection's page path; the position."""
    projection, position = OrderListProjection(view=live), 0
    while page := orders.notifications(position, sys.maxsize, PROJECT_PAGE):
        events = order_events(orders, page)
        position = page[-1].id
        projection.process_order_events(events, Tracking(orders.name, position))
    return position


@contextlib.contextmanager
def projector_process(settings: Settings, log_path: Path) -> Iterator[None]:
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.projector"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "projector: following" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the projector did not start; see {log_path}")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def live_traffic(
    settings: Settings, orders: Orders, stop: threading.Event, traffic: LiveTraffic
) -> None:
    """Write orders and count the live list until `stop`."""
    mill = OrderMill(orders, LIVE_IN_FLIGHT)
    reader = open_order_list(settings)
    try:
        while not stop.wait(LIVE_TICK_SECONDS):
            mill.tick(LIVE_IN_FLIGHT // EVENTS_PER_ORDER)
            traffic.events_written = mill.events
            started = time.perf_counter()
            traffic.totals.append(reader.list_by_status(list(Status), page=1, limit=1)[1])
            traffic.slowest_read = max(traffic.slowest_read, time.perf_counter() - started)
    finally:
        reader.close()


def listed_after_the_swap(orders: Orders, live: OrderListView, count: int) -> bool:
    """Place `count` lifecycles after the swap; whether the projector lists them all."""
    mill = OrderMill(orders, count * EVENTS_PER_ORDER)
    placed: list[Order] = mill.run(count)
    end = orders.recorder.max_notification_id() or 0
    live.wait(orders.name, end, timeout=60)
    rows = live.get_many([order.id for order in placed])
    return len(rows) == count and all(row.view.status is Status.COMPLETED for row in rows.values())


REBUILD_COMMAND = ("projections", "rebuild", "order-list")
REPORTED = re.compile(
    r"rebuilt: (?P<events>\d+) events in (?P<seconds>[\d.]+) s \((?P<rate>\d+) events/s;"
)


@dataclass(frozen=True)
class CommandRun:
    """What `otc projections rebuild order-list` printed, and its exit code."""

    exit_code: int
    output: str

    def line(self, starting: str) -> str:
        found = [line for line in self.output.splitlines() if starting in line]
        return found[-1].strip() if found else f"(no {starting!r} line; exit {self.exit_code})"

    @property
    def events_per_second(self) -> int:
        found = REPORTED.search(self.output)
        return int(found["rate"]) if found else 0

    @property
    def events(self) -> int:
        found = REPORTED.search(self.output)
        return int(found["events"]) if found else 0


def run_rebuild(settings: Settings) -> CommandRun:
    """The command itself, in a process of its own, as an operator runs it."""
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed interpreter and arguments
        [sys.executable, "-c", "from services.cli import main; main()", *REBUILD_COMMAND],
        env={**os.environ, **settings.to_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    return CommandRun(done.returncode, done.stdout + done.stderr)


@dataclass(frozen=True)
class RebuildFigures:
    filled: int
    fill_seconds: float
    run: CommandRun
    traffic: LiveTraffic
    listed_after: bool
    load: str
    """The machine's load average when the rebuild ended (other work on the same cores)."""

    def lines(self) -> list[str]:
        t = self.traffic
        return [
            f"store: {self.filled} order events, filled in {self.fill_seconds:.1f} s",
            f"otc {' '.join(REBUILD_COMMAND)} (exit {self.run.exit_code}):",
            "  " + self.run.line("rebuilt:"),
            "  " + self.run.line("rows "),
            (
                f"live list during the rebuild: {len(t.totals)} reads of"
                f" {min(t.totals, default=0)} to {max(t.totals, default=0)} orders, never fewer"
                f" than the read before: {t.never_shrank}, slowest read"
                f" {t.slowest_read * 1000:.0f} ms; {t.events_written} events written meanwhile"
            ),
            f"orders written after the swap listed by the projector: {self.listed_after}",
            f"load average of the machine (1, 5, 15 min): {self.load}",
        ]


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def bench_rebuild(settings: Settings, orders_count: int, in_flight: int) -> RebuildFigures:
    with scratch_database(settings, "bench_rebuild") as bench:
        orders, live = open_orders(bench), open_order_list(bench)
        try:
            started = time.perf_counter()
            mill = OrderMill(orders, in_flight)
            mill.run(orders_count)
            filled, fill_seconds = mill.events, time.perf_counter() - started
            project(orders, live)
            log_path = Path(".run") / "bench-rebuild-projector.log"
            log_path.parent.mkdir(exist_ok=True)
            with projector_process(bench, log_path):
                stop, traffic = threading.Event(), LiveTraffic()
                with ThreadPoolExecutor(1) as pool:
                    busy = pool.submit(live_traffic, bench, orders, stop, traffic)
                    try:
                        run = run_rebuild(bench)
                        load = load_average()
                    finally:
                        stop.set()
                    busy.result()
                listed_after = listed_after_the_swap(orders, live, 50)
        finally:
            live.close()
            orders.close()
    return RebuildFigures(filled, fill_seconds, run, traffic, listed_after, load)
