"""A process's liveness, for the supervisor and `deploy/local/status`.

Every few seconds a process probes its dependencies (PostgreSQL with `SELECT 1` on a connection
of its own, Kafka with a metadata request), records what it found in its `Outages` (which logs
the start and the end of an outage once) and writes a heartbeat file: its pid, the time, and the
dependencies that are down. The file is replaced atomically, so a reader never sees half of it.
A heartbeat that stops coming means the process hangs; the supervisor then restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from aiokafka.admin import AIOKafkaAdminClient

from services import kafka
from services.metrics import dependency_probed
from services.pg import recheck_pools
from services.resilience import Backoff, Dependency, Outages, ride_out, sleep_unless
from services.settings import Settings

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises (or times out) when it does not."""
SyncProbe = Callable[[], None]


def process_name(settings: Settings, default: str) -> str:
    """The name this process goes by in logs, heartbeats and status (`engine-2`, `relay`)."""
    return settings.process_name or default


def write_heartbeat(path: Path, process: str, outages: Outages, detail: Mapping[str, Any]) -> None:
    body = {
        "process": process,
        "pid": os.getpid(),
        "at": time.time(),
        "down": outages.snapshot(),
        **detail,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(body))
    scratch.replace(path)


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found


class PostgresProbe:
    """`SELECT 1` on one connection of the probe's own, reconnected when it was lost."""

    def __init__(self, settings: Settings) -> None:
        self._conninfo = settings.conninfo()
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __call__(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        try:
            await self._conn.execute("SELECT 1")
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


class SyncPostgresProbe:
    """The same, for a process whose work runs in threads (the projector)."""

    def __init__(self, settings: Settings) -> None:
        self._conninfo = settings.conninfo()
        self._conn: psycopg.Connection[Any] | None = None

    def __call__(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class KafkaProbe:
    """A metadata request through an admin client of the probe's own."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> None:
        if self._admin is None:
            admin = kafka.admin(self._settings, client_id=self._client_id)
            try:
                await admin.start()
            except Exception:
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._admin = admin
        try:
            await self._admin.describe_cluster()
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
            self._admin = None


class Vitals:
    """Probes and heartbeat of one process. `run` in an asyncio process; `run_in_thread` in one
    whose work is synchronous."""

    def __init__(self, settings: Settings, process: str, outages: Outages) -> None:
        self.settings = settings
        self.process = process
        self.outages = outages
        self.detail: dict[str, Any] = {}

    def beat(self) -> None:
        path = self.settings.heartbeat_file
        if path is None:
            return
        try:
            write_heartbeat(path, self.process, self.outages, self.detail)
        except OSError as error:
            log.debug("%s: heartbeat not written: %s", self.process, error)

    async def run(self, probes: Mapping[Dependency, Probe], stop: asyncio.Event) -> None:
        """Probe and beat until `stop` is set; after each PostgreSQL outage, recheck the
        process's connection pools."""
        rechecked = self.outages.recoveries[Dependency.POSTGRES]
        while True:
            for dependency, probe in probes.items():
                try:
                    async with asyncio.timeout(self.settings.probe_timeout_seconds):
                        await probe()
                except Exception as error:  # noqa: BLE001 - any failure of a probe means "down"
                    self.outages.failed(error, dependency)
                    dependency_probed(dependency.value, up=False)
                else:
                    self.outages.ok(dependency)
                    dependency_probed(dependency.value, up=True)
            if self.outages.recoveries[Dependency.POSTGRES] != rechecked:
                rechecked = self.outages.recoveries[Dependency.POSTGRES]
                await recheck_pools()
            self.beat()
            if await sleep_unless(stop, self.settings.heartbeat_interval_seconds):
                return

    def run_in_thread(
        self, probes: Mapping[Dependency, SyncProbe], stop: threading.Event
    ) -> threading.Thread:
        def loop() -> None:
            while True:
                for dependency, probe in probes.items():
                    try:
                        probe()
                    except Exception as error:  # noqa: BLE001 - any failure means "down"
                        self.outages.failed(error, dependency)
                        dependency_probed(dependency.value, up=False)
                    else:
                        self.outages.ok(dependency)
                        dependency_probed(dependency.value, up=True)
                self.beat()
                if stop.wait(self.settings.heartbeat_interval_seconds):
                    return

        thread = threading.Thread(target=loop, name="vitals", daemon=True)
        thread.start()
        return thread


def probes_for(
    settings: Settings, process: str, *dependencies: Dependency
) -> tuple[dict[Dependency, Probe], Callable[[], Awaitable[None]]]:
    """The probes of these dependencies, and a function that closes them."""
    postgres = PostgresProbe(settings)
    kafka = KafkaProbe(settings, client_id=f"{process}-probe")
    available: dict[Dependency, Probe] = {Dependency.POSTGRES: postgres, Dependency.KAFKA: kafka}

    async def close() -> None:
        await postgres.close()
        await kafka.close()

    return {dependency: available[dependency] for dependency in dependencies}, close


@contextlib.asynccontextmanager
async def vitals_running(
    settings: Settings, outages: Outages, *dependencies: Dependency
) -> AsyncIterator[Vitals]:
    """Probe these dependencies and beat, in a task, for the duration of the block."""
    process = outages.process
    vitals = Vitals(settings, process, outages)
    probes, close = probes_for(settings, process, *dependencies)
    stop = asyncio.Event()
    task = asyncio.create_task(vitals.run(probes, stop), name=f"{process}-vitals")
    try:
        yield vitals
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
        await close()


async def run_sessions(
    settings: Settings,
    name: str,
    log: logging.Logger,
    session: Callable[[asyncio.Event, Callable[[], None]], Awaitable[None]],
) -> None:
    """A process made of sessions (the relay, the sweeper): until SIGTERM or SIGINT, run
    `session(stop, working)` again after a backoff delay each time PostgreSQL or Kafka takes it
    down (`services.resilience.ride_out`), with heartbeats and probes running beside it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    outages = Outages(process_name(settings, name), log)
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
    async with vitals_running(settings, outages, Dependency.POSTGRES, Dependency.KAFKA):
        await ride_out(
            lambda working: session(stop, working), outages=outages, backoff=backoff, stop=stop
        )
    log.info("%s: stopped", name)
