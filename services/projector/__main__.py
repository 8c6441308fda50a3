"""The projector process: `python -m services.projector`. Its composition root.

eventsourcing's `ProjectionRunner` follows the `Orders` notification log from the view's tracked
position and applies each notification to `order_list` exactly once (row and position in one
transaction). When PostgreSQL goes away the runner fails; the projector then waits a backoff
delay (capped, with jitter), takes its writer lock again and starts a new runner, which resumes
from the tracked position: nothing is skipped and nothing applied twice. SIGTERM and SIGINT stop
it cleanly (exit 0); any other error of the runner ends the process with exit code 1.

Beside the runner, while it holds the writer lock, a thread writes the audit checkpoints over
the notification log (services/audit/checkpoints.py) every `audit_checkpoint_seconds`. They are
here because they need what the projector has and nothing more: PostgreSQL only (a Kafka outage
does not hold them up), one active instance, the notification log read anyway; their failures
are logged and retried, and never stop the read model.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import psycopg
from eventsourcing.projection import ProjectionRunner

from projections.order_list import OrderListView
from services.audit.checkpoints import Checkpointer
from services.audit.records import StoredLog
from services.engine.event_store import Orders, harden_recorder, schema_lock
from services.logs import configure_logging
from services.metrics import PROJECTOR, serve_metrics
from services.projector import projector_env, take_writer_lock
from services.projector.measured import MeasuredOrderListProjection
from services.resilience import Backoff, Dependency, Outages, is_outage
from services.settings import Settings
from services.vitals import SyncPostgresProbe, Vitals, process_name

log = logging.getLogger("otc.projector")

STANDBY_POLL_SECONDS = 2.0


def on_stop_signals(action: Callable[[], None]) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        action()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def follow_once(settings: Settings, stopping: threading.Event, working: Callable[[], None]) -> None:
    """One runner, from the view's tracked position until `stopping` or an error."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as lock_conn:
        told = False
        while not take_writer_lock(lock_conn):
            if not told:
                log.info("another projector writes order_list; waiting")
                told = True
            if stopping.wait(STANDBY_POLL_SECONDS):
                return
        with schema_lock(settings):
            runner = ProjectionRunner(
                application_class=Orders,
                projection_class=MeasuredOrderListProjection,
                view_class=OrderListView,
                env=projector_env(settings),
            )
        harden_recorder(runner.app.recorder, settings)
        harden_recorder(runner.view, settings)
        try:
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
                working()
                session_over = threading.Event()
                checkpoints = Checkpointer(
                    settings, StoredLog(runner.app), lambda: datetime.now(UTC)
                )
                checkpointing = checkpoints.start(session_over)
                try:
                    runner.run_forever()
                finally:
                    session_over.set()
                    checkpointing.join(timeout=10)
        finally:
            on_stop_signals(stopping.set)
            runner.view.close()


def follow(settings: Settings, stopping: threading.Event, outages: Outages) -> None:
    """Runners one after another for as long as PostgreSQL keeps going away."""
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)

    def working() -> None:
        backoff.reset()
        outages.ok(Dependency.POSTGRES)

    while not stopping.is_set():
        try:
            follow_once(settings, stopping, working)
        except Exception as error:
            if not is_outage(error):
                raise
            outages.failed(error)
            stopping.wait(backoff.next_delay())
        else:
            return


def main() -> None:
    configure_logging("projector")
    settings = Settings()
    serve_metrics(settings, PROJECTOR)
    stopping = threading.Event()
    on_stop_signals(stopping.set)
    outages = Outages(process_name(settings, "projector"), log)
    vitals = Vitals(settings, outages.process, outages)
    probe = SyncPostgresProbe(settings)
    beating = vitals.run_in_thread({Dependency.POSTGRES: probe}, stopping)
    try:
        follow(settings, stopping, outages)
    except Exception:
        log.exception("projector: failed")
        raise SystemExit(1) from None
    finally:
        stopping.set()
        beating.join(timeout=5)
        probe.close()
    log.info("projector: stopped")


if __name__ == "__main__":
    main()
