"""Keeping a set of child processes running: the machinery of `services.local.supervisor`.

A child that exits is started again after a delay that doubles with each failure in a row, with
jitter, up to a cap (`RestartPolicy`). A child that stayed up for a healthy while (a minute by
default) has its failures forgotten, so the next exit is restarted quickly again. There is no
limit: a child that keeps failing is retried at the cap for as long as the supervisor runs, and
every restart says so in the supervisor's output. A child whose heartbeat file goes stale is
hung: it is killed, and then restarted like any other exit.

What runs is written to a state file after every change (`.run/supervisor.json`): each child's
pid, state, start time, restarts and last exit. `deploy/local/status` reads it; the supervisor's
own pid is in `.run/supervisor.pid`, which `deploy/local/down` signals.

Metrics: given a base port, the supervisor serves its own (restarts, which child is up) there
and gives each child that serves metrics the next free port (`OTC_METRICS_PORT`), kept across
its restarts; where every process's metrics are is written to `.run/prometheus/targets.json`
after every change, for Prometheus's file discovery (deploy/prometheus/prometheus.yml).

Here: the restart policy and the `Supervisor`. Where the state is kept and reading it back:
places.py; a child, how it is started and how it ended: processes.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.local.places import Places
from services.local.processes import Child, Exit, Spawn, signal_name, spawn_python
from services.local.scrape_targets import Target, free_port_after, write_targets
from services.metrics import SUPERVISOR_RESTARTS, SUPERVISOR_UP
from services.vitals import read_heartbeat


@dataclass(frozen=True)
class RestartPolicy:
    initial: float = 0.5
    maximum: float = 30.0
    healthy_after: float = 60.0

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        """The wait before restart number `failures` of a failing streak (from 1): drawn from
        [ceiling / 2, ceiling], ceiling = min(maximum, initial x 2**(failures - 1))."""
        ceiling = self.ceiling(failures)
        return ceiling / 2 + draw() * ceiling / 2

    def ceiling(self, failures: int) -> float:
        return min(self.maximum, self.initial * 2.0 ** max(failures - 1, 0))

    def at_maximum(self, failures: int) -> bool:
        return self.ceiling(failures) >= self.maximum


@dataclass
class Supervisor:
    env: dict[str, str]
    places: Places = field(default_factory=Places)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    liveness_timeout: float = 30.0
    mode: str = "foreground"
    spawn: Spawn = spawn_python
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    draw: Callable[[], float] = random.random
    children: list[Child] = field(default_factory=list)
    phase: str = "starting"
    started_wall: float = field(default_factory=time.time)
    metrics_base_port: int | None = None
    """The supervisor's own metrics port; its children's are the next free ones."""
    metrics_host: str = "127.0.0.1"

    def heartbeat_path(self, child: Child) -> Path:
        return self.places.heartbeats / f"{child.name}.json"

    def log_path(self, child: Child) -> Path:
        return self.places.logs / f"{child.name}.log"

    def start_child(self, child: Child) -> None:
        for folder in (self.places.logs, self.places.pids, self.places.heartbeats):
            folder.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "OTC_PROCESS_NAME": child.name}
        if child.environ is not None:
            env = child.environ(env)
        if child.heartbeat:
            self.heartbeat_path(child).unlink(missing_ok=True)
            env["OTC_HEARTBEAT_FILE"] = str(self.heartbeat_path(child))
        if child.metrics and self.metrics_base_port is not None:
            child.metrics_port = child.metrics_port or self._free_metrics_port()
            env["OTC_METRICS_PORT"] = str(child.metrics_port)
        child.process = self.spawn(child.argv, env, self.log_path(child))
        child.started_at = self.clock()
        child.started_wall = self.wall_clock()
        child.next_start = None
        (self.places.pids / f"{child.name}.pid").write_text(str(child.process.pid))
        if child not in self.children:
            self.children.append(child)
        self.write_state()

    def check(self) -> None:
        """One pass over the children: note exits, schedule and make restarts, kill the hung.
        Once stopping, nothing is restarted."""
        if self.phase in {"stopping", "stopped"}:
            return
        now = self.clock()
        for child in self.children:
            if child.process is not None and child.next_start is None and not child.alive():
                self._exited(child, now)
            elif child.alive() and self._hung(child, now):
                self.say(
                    f"{child.name}: no heartbeat for over {self.liveness_timeout:.0f}s;"
                    f" killing pid {child.pid}"
                )
                with contextlib.suppress(ProcessLookupError):
                    assert child.process is not None  # noqa: S101 - alive
                    child.process.send_signal(signal.SIGKILL)
            if child.next_start is not None and now >= child.next_start:
                child.restarts += 1
                SUPERVISOR_RESTARTS.labels(child.name).inc()
                self.start_child(child)
                self.say(f"{child.name}: restarted (restart {child.restarts}), pid {child.pid}")

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None  # noqa: S101 - it was started
        code = child.process.returncode
        uptime = now - child.started_at
        child.last_exit = Exit(code, signal_name(code), self.wall_clock(), uptime)
        if uptime >= self.policy.healthy_after:
            child.failures = 0
        child.failures += 1
        delay = self.policy.delay(child.failures, self.draw)
        child.next_start = now + delay
        note = (
            f"; it keeps failing ({child.failures} in a row): retrying every"
            f" {self.policy.maximum:.0f}s or so until it stays up"
            if self.policy.at_maximum(child.failures)
            else ""
        )
        self.say(
            f"{child.name}: {child.last_exit.describe()}; restarting in {delay:.1f}s"
            f"{note} (log {self.log_path(child)})"
        )
        self.write_state()

    def _hung(self, child: Child, now: float) -> bool:
        if not child.heartbeat or now - child.started_at < self.liveness_timeout:
            return False
        beat = read_heartbeat(self.heartbeat_path(child))
        if beat is None or beat.get("pid") != child.pid:
            return True
        return self.wall_clock() - float(beat.get("at", 0)) > self.liveness_timeout

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM to every child, then SIGKILL to any still there after `timeout` seconds."""
        self.phase = "stopping"
        self.write_state()
        for child in reversed(self.children):
            child.next_start = None
            if child.alive():
                assert child.process is not None  # noqa: S101 - alive
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = self.clock() + timeout
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGKILL)
                child.process.wait(timeout=10)
            (self.places.pids / f"{child.name}.pid").unlink(missing_ok=True)
        self.phase = "stopped"
        self.write_state()

    def write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "mode": self.mode,
            "phase": self.phase,
            "started_at": self.started_wall,
            "updated_at": self.wall_clock(),
            "liveness_timeout": self.liveness_timeout,
            "children": [self._child_state(child) for child in self.children],
        }
        self.places.root.mkdir(parents=True, exist_ok=True)
        scratch = self.places.state.with_name(f".{self.places.state.name}.tmp")
        scratch.write_text(json.dumps(state, indent=1))
        scratch.replace(self.places.state)
        for child in self.children:
            SUPERVISOR_UP.labels(child.name).set(1 if child.alive() else 0)
        self._write_targets()

    def _free_metrics_port(self) -> int:
        assert self.metrics_base_port is not None  # noqa: S101 - only asked when set
        taken = {child.metrics_port for child in self.children if child.metrics_port}
        return free_port_after(self.metrics_base_port, taken, self.metrics_host)

    def _write_targets(self) -> None:
        if self.metrics_base_port is None:
            return
        found = [
            Target("supervisor", "supervisor", f"{self.metrics_host}:{self.metrics_base_port}")
        ]
        for child in self.children:
            if child.metrics_port is not None:
                found.append(
                    Target(child.name, child.kind, f"{self.metrics_host}:{child.metrics_port}")
                )
            elif child.metrics_address is not None:
                found.append(Target(child.name, child.kind, child.metrics_address))
        write_targets(self.places.metrics_targets, found)

    def _child_state(self, child: Child) -> dict[str, Any]:
        return {
            "name": child.name,
            "kind": child.kind,
            "pid": child.pid if child.alive() else None,
            "state": child.state(),
            "started_at": child.started_wall if child.alive() else None,
            "restarts": child.restarts,
            "failures_in_a_row": child.failures,
            "last_exit": asdict(child.last_exit) if child.last_exit else None,
            "next_start_in": (
                max(0.0, child.next_start - self.clock()) if child.next_start is not None else None
            ),
            "address": child.address,
            "health_url": child.health_url,
            "heartbeat": str(self.heartbeat_path(child)) if child.heartbeat else None,
            "log": str(self.log_path(child)),
        }
