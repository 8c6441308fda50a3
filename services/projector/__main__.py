"""The projector process: `python -m services.projector`. Its composition root.

eventsourcing's `ProjectionRunner` follows the `Orders` notification log from the view's tracked
position and applies each notification to `order_list` exactly once. SIGTERM and SIGINT stop it
cleanly (exit 0); an error of the runner ends the process with exit code 1 instead of hanging.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import psycopg
from eventsourcing.projection import ProjectionRunner

from projections.order_list import OrderListProjection, OrderListView
from services.engine.app import Orders, schema_lock
from services.logs import configure_logging
from services.projector import projector_env, take_writer_lock
from services.settings import Settings

log = logging.getLogger("otc.projector")

STANDBY_POLL_SECONDS = 2.0


def on_stop_signals(action: Callable[[], None]) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        action()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def follow(settings: Settings, stopping: threading.Event) -> None:
    with psycopg.connect(settings.conninfo(), autocommit=True) as lock_conn:
        while not take_writer_lock(lock_conn):
            log.info("another projector or a rebuild writes order_list; waiting")
            if stopping.wait(STANDBY_POLL_SECONDS):
                return
        with schema_lock(settings):
            runner = ProjectionRunner(
                application_class=Orders,
                projection_class=OrderListProjection,
                view_class=OrderListView,
                env=projector_env(settings),
            )
        with runner:

            def stop() -> None:
                stopping.set()
                runner.stop()

            on_stop_signals(stop)
            if stopping.is_set():
                return
            log.info(
                "projector: following %s into order_list (view at position %d)",
                runner.app_name,
                runner.view.max_tracking_id(runner.app_name) or 0,
            )
            runner.run_forever()
    log.info("projector: stopped")


def main() -> None:
    configure_logging()
    stopping = threading.Event()
    on_stop_signals(stopping.set)
    try:
        follow(Settings(), stopping)
    except Exception:
        log.exception("projector: failed")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
